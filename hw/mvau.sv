// mvau: matrix-vector-activation unit, folded by PE rows and SIMD columns.
//
// Function  : for each input vector x (MW elements) the output vector (MH elements) is
//             acc[r] = sum_c x[c] * W[r][c], or with IN_BIPOLAR and W_BIPOLAR both set the
//             XNOR-popcount acc[r] = number of c where x[c] and W[r][c] have the same sign.
//             With NUM_T > 0 the output is the multi-threshold activation
//             out[r] = (number of thresholds t of row r with t <= acc[r]) + OUT_OFFSET
//             in OUT_W bits; with NUM_T = 0 it is acc[r] itself (OUT_W = ACC_W).
//             This is qnnflow.flows.ir.kernels.mvau.
// Streams   : an input beat is SIMD elements of x (beat j: elements j*SIMD .. +SIMD-1, element i
//             at bits [i*IN_W +: IN_W]); a vector is SF = MW/SIMD beats. An output beat is PE
//             elements (beat n: rows n*PE .. +PE-1); a vector gives NF = MH/PE beats.
//             Bipolar values are one bit, 0 meaning -1; signed values two's complement.
// Memories  : WEIGHT_FILE holds NF*SF words of PE*SIMD weights (word nf*SF+sf, element pe*SIMD+s
//             = W[nf*PE+pe][sf*SIMD+s]); THRESH_FILE holds NF words of PE*NUM_T thresholds of
//             ACC_W bits (word nf, element pe*NUM_T+t = threshold t of row nf*PE+pe), as written
//             by qnnflow.flows.codegen.memfiles. Both are read synchronously (block RAM friendly).
// Timing    : one SIMD slice of one PE fold per cycle: the first fold takes the input beats as
//             they come and keeps them in an SF-word buffer, the other NF-1 folds read them back,
//             so a vector takes NF*SF cycles and vectors follow back to back without a gap.
//             Latency from the last input beat of a fold to its output beat: 4 cycles, 5 when
//             SIMD > GROUP (the dot products are then summed in two registered halves:
//             partial sums of GROUP products, then the sum of the partial sums).
//             The input slice and its weights are registered in the fabric before the dot
//             products (stage 0), so neither a block-RAM read (the weight memory, an upstream
//             FIFO) nor the input-buffer bypass shares a clock cycle with the adder tree.
// Ready     : the pipeline stops as a whole only when its result cannot enter the output slice
//             (skid_buffer), whose ready is a register; s_axis_tready depends on registers only,
//             with no combinational path from m_axis_tready.
// Structure : the fold counters and the input buffer are here; the weights, the dot products
//             (stages 0 and 1), the accumulator (stage 2), the thresholds and the output slice
//             are hw/mac_backend.sv, shared with hw/vvau.sv.
//
// Parameters:
//   MW, MH       matrix columns (input vector length) and rows (output vector length)
//   PE, SIMD     rows and columns processed per cycle; PE must divide MH, SIMD must divide MW
//   IN_W         input element width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1,+1} (IN_W = 1)
//   W_W          weight width; W_SIGNED: two's complement (ternary is W_W = 2 signed holding
//                -1/0/+1); W_BIPOLAR: {-1,+1} (W_W = 1)
//   ACC_W        accumulator width (signed); qnnflow.flows.ir.kernels.accumulator_width gives it
//   NUM_T        thresholds per row; 0 for no activation
//   OUT_W        output element width (= ACC_W when NUM_T = 0)
//   OUT_OFFSET   signed offset added to the threshold count
//   WEIGHT_FILE, THRESH_FILE  $readmemh files (THRESH_FILE unused when NUM_T = 0)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mvau #(
    parameter int MW          = 8,
    parameter int MH          = 4,
    parameter int PE          = 2,
    parameter int SIMD        = 4,
    parameter int IN_W        = 2,
    parameter bit IN_SIGNED   = 1'b0,
    parameter bit IN_BIPOLAR  = 1'b0,
    parameter int W_W         = 2,
    parameter bit W_SIGNED    = 1'b1,
    parameter bit W_BIPOLAR   = 1'b0,
    parameter int ACC_W       = 8,
    parameter int NUM_T       = 0,
    parameter int OUT_W       = 8,
    parameter int OUT_OFFSET  = 0,
    parameter     WEIGHT_FILE = "weights.mem",
    parameter     THRESH_FILE = ""
) (
    input  wire logic                  clk,
    input  wire logic                  rst,

    input  wire logic [SIMD*IN_W-1:0]  s_axis_tdata,
    input  wire logic                  s_axis_tvalid,
    output wire logic                  s_axis_tready,

    output wire logic [PE*OUT_W-1:0]   m_axis_tdata,
    output wire logic                  m_axis_tvalid,
    input  wire logic                  m_axis_tready
);

    // ---------------------------------------------------------------- configuration checks
    // (the operand, accumulator and threshold parameters are checked by mac_backend)
    if (PE < 1 || MH % PE != 0) begin : g_bad_pe
        $fatal(1, "%m: PE (%0d) must divide MH (%0d)", PE, MH);
    end
    if (SIMD < 1 || MW % SIMD != 0) begin : g_bad_simd
        $fatal(1, "%m: MW (%0d) must be a multiple of SIMD (%0d)", MW, SIMD);
    end

    localparam int NF      = MH / PE;
    localparam int SF      = MW / SIMD;
    localparam int NF_W    = NF > 1 ? $clog2(NF) : 1;
    localparam int SF_W    = SF > 1 ? $clog2(SF) : 1;
    localparam int XWORD_W = SIMD * IN_W;

    // ---------------------------------------------------------------- control
    // a vector is NF folds of SF slices (sf fastest); the first fold takes the input beats
    logic [SF_W-1:0] sf_reg;
    logic [NF_W-1:0] nf_reg;
    wire             en;  // the pipeline moves (mac_backend)

    wire first_fold = nf_reg == '0;
    wire issue      = en && (!first_fold || s_axis_tvalid);
    wire last_sf    = sf_reg == SF_W'(SF - 1);
    wire last_nf    = nf_reg == NF_W'(NF - 1);

    assign s_axis_tready = en && first_fold;

    always_ff @(posedge clk) begin
        if (issue) begin
            sf_reg <= last_sf ? '0 : sf_reg + 1'b1;
            if (last_sf) nf_reg <= last_nf ? '0 : nf_reg + 1'b1;
        end
        if (rst) begin
            sf_reg <= '0;
            nf_reg <= '0;
        end
    end

    // ---------------------------------------------------------------- input vector buffer
    logic [XWORD_W-1:0] x_cur;

    if (NF > 1) begin : g_buffer
        logic [XWORD_W-1:0] xbuf [SF];
        always_ff @(posedge clk) begin
            if (issue && first_fold) xbuf[sf_reg] <= s_axis_tdata;
        end
        assign x_cur = first_fold ? s_axis_tdata : xbuf[sf_reg];
    end else begin : g_no_buffer
        assign x_cur = s_axis_tdata;
    end

    // ---------------------------------------------------------------- weights, dot products,
    // accumulation (one fold after the other), thresholds, output slice
    mac_backend #(
        .PE(PE), .SIMD(SIMD), .NF(NF), .SF(SF), .X_PER_ROW(1'b0), .INTERLEAVED(1'b0),
        .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR),
        .W_W(W_W), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR),
        .ACC_W(ACC_W), .NUM_T(NUM_T), .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET),
        .WEIGHT_FILE(WEIGHT_FILE), .THRESH_FILE(THRESH_FILE)
    ) u_backend (
        .clk(clk),
        .rst(rst),
        .en(en),
        .issue(issue),
        .last_word(last_sf && last_nf),
        .first(sf_reg == '0),
        .last(last_sf),
        .fold(nf_reg),
        .x(x_cur),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
