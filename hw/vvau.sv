// vvau: vector-vector-activation unit (depthwise convolution), folded by PE channels and SIMD
// window positions, as FINN's VVAU.
//
// Function  : for each window of KK positions (K*K of a square kernel, KH*KW otherwise) of CH
//             channels, out[c] = sum over window positions k of W[c][k] * x[k][c]: each channel
//             is convolved with its own kernel, channels do not mix. With IN_BIPOLAR and
//             W_BIPOLAR both set the XNOR-popcount: the number of k where x[k][c] and W[c][k]
//             have the same sign. With NUM_T > 0 the output is the multi-threshold activation
//             out[c] = (number of thresholds t of channel c with t <= acc[c]) + OUT_OFFSET in
//             OUT_W bits; with NUM_T = 0 it is acc[c] itself (OUT_W = ACC_W).
//             This is qnnflow.flows.ir.kernels_dw.vvau.
// Streams   : the input is hw/sliding_window.sv's window stream: a window is KK*CH elements in
//             (ky, kx, c) order (element k*CH + c is x[k][c]), cut into beats of SIMD*PE
//             consecutive elements (element i of a beat at bits [i*IN_W +: IN_W]); a window is
//             NF*SF beats, NF = CH/PE, SF = KK/SIMD. With SIMD = 1 a beat is PE channels of one
//             window position (beat sf*NF + nf: channels nf*PE .. +PE-1 of position sf); SIMD > 1
//             needs PE = CH, and a beat is then SIMD whole window positions (element s*CH + c is
//             x[sf*SIMD + s][c]): only then are SIMD positions of the same channels adjacent in a
//             (ky, kx, c) stream (FINN's folding, too, raises SIMD only once PE = CH).
//             The output is channels-last: NF beats of PE channels per window (beat nf: channels
//             nf*PE .. +PE-1). Bipolar values are one bit, 0 meaning -1; signed values two's
//             complement.
// Memories  : WEIGHT_FILE holds SF*NF words of PE*SIMD weights (word sf*NF+nf, element pe*SIMD+s
//             = W[nf*PE+pe][sf*SIMD+s]): the weights in the order the window stream needs them.
//             THRESH_FILE holds NF words of PE*NUM_T thresholds of ACC_W bits (word nf, element
//             pe*NUM_T+t = threshold t of channel nf*PE+pe). Both as written by
//             qnnflow.flows.codegen.memfiles (vvau_weight_words, threshold_words); both read
//             synchronously (block RAM friendly). With THR_SEARCH the thresholds are in
//             hw/threshold_search.sv's files instead, THRESH_PREFIX_s<k>_l<pe>.mem (NF * 2^k words of
//             ACC_W bits per search stage k and lane pe, memfiles.threshold_search_words).
// Timing    : one input beat per cycle, each beat used once (no input buffer): a window takes
//             NF*SF cycles and windows follow back to back without a gap. The NF partial sums of
//             a window (one per channel fold) are kept in an NF-word accumulator memory (with
//             NF = 1, a register); the NF output beats of a window come out during its last SIMD
//             slice, one per cycle. Latency from the cycle a fold's last input beat is taken to
//             its output beat, queue empty: 1 + hw/mac_pipeline.sv's LATENCY (with THR_SEARCH the
//             search's 6 * clog2(NUM_T + 1) in place of the compare-and-count), as in hw/mvau.sv
//             (qnnflow.flows.compile.latency models the unit with it). The input slice and its
//             weights are registered before the products, as in hw/mvau.sv.
// Ready     : the pipeline stops as a whole only when its result cannot enter the output slice
//             (skid_buffer), whose ready is a register; s_axis_tready depends on registers only,
//             with no combinational path from m_axis_tready.
//
// Parameters:
//   CH, KK       channels and window positions (K*K)
//   PE, SIMD     channels and window positions per cycle; PE must divide CH, SIMD must divide KK,
//                SIMD > 1 needs PE = CH
//   IN_W         input element width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1,+1} (IN_W = 1)
//   W_W          weight width; W_SIGNED: two's complement (ternary is W_W = 2 signed holding
//                -1/0/+1); W_BIPOLAR: {-1,+1} (W_W = 1)
//   ACC_W        accumulator width (signed), qnnflow.flows.ir.kernels.accumulator_width over KK products
//   NUM_T        thresholds per channel; 0 for no activation
//   OUT_W        output element width (= ACC_W when NUM_T = 0)
//   OUT_OFFSET   signed offset added to the threshold count
//   WEIGHT_FILE, THRESH_FILE  $readmemh files (THRESH_FILE unused when NUM_T = 0 or with THR_SEARCH)
//   THR_SEARCH   1: the count by binary search (hw/threshold_search.sv; each row's thresholds
//                non-decreasing), 0: every threshold compared at once (hw/threshold_count.sv)
//   THRESH_PREFIX  with THR_SEARCH, the beginning of the search's memory files (see Memories)
//   THR_BRAM     1: the threshold memory goes to block RAM (rom_style "block"; the compiler sets it
//                where memfiles.rom_in_block_ram says so), read through a second register beside
//                the comparators (THR_REG2 in hw/mac_pipeline.sv, one cycle more); 0: Yosys decides

`resetall
`timescale 1ns / 1ps
`default_nettype none

module vvau #(
    parameter int CH          = 4,
    parameter int KK          = 9,
    parameter int PE          = 2,
    parameter int SIMD        = 1,
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
    parameter     THRESH_FILE = "",
    parameter bit THR_SEARCH  = 1'b0,
    parameter bit THR_BRAM    = 1'b0,
    parameter     THRESH_PREFIX = ""
) (
    input  wire logic                       clk,
    input  wire logic                       rst,

    input  wire logic [SIMD*PE*IN_W-1:0]    s_axis_tdata,
    input  wire logic                       s_axis_tvalid,
    output wire logic                       s_axis_tready,

    output wire logic [PE*OUT_W-1:0]        m_axis_tdata,
    output wire logic                       m_axis_tvalid,
    input  wire logic                       m_axis_tready
);

    // ---------------------------------------------------------------- configuration checks
    if (PE < 1 || CH % PE != 0) begin : g_bad_pe
        $fatal(1, "%m: PE (%0d) must divide CH (%0d)", PE, CH);
    end
    if (SIMD < 1 || KK % SIMD != 0) begin : g_bad_simd
        $fatal(1, "%m: SIMD (%0d) must divide KK (%0d)", SIMD, KK);
    end
    if (SIMD > 1 && PE != CH) begin : g_bad_fold
        $fatal(1, "%m: SIMD (%0d) > 1 needs PE = CH (%0d), not PE = %0d (window positions of the same channels are adjacent in the (ky, kx, c) stream only then)",
               SIMD, CH, PE);
    end
    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_in_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (W_BIPOLAR && W_W != 1) begin : g_bad_w_bipolar
        $fatal(1, "%m: bipolar weights are 1 bit wide, not W_W = %0d", W_W);
    end
    if (ACC_W < 2 || ACC_W > 32) begin : g_bad_acc
        $fatal(1, "%m: ACC_W (%0d) must be in 2..32", ACC_W);
    end
    if (NUM_T < 0) begin : g_bad_num_t
        $fatal(1, "%m: NUM_T (%0d) must not be negative", NUM_T);
    end
    if (NUM_T == 0 && OUT_W != ACC_W) begin : g_bad_out
        $fatal(1, "%m: without thresholds OUT_W (%0d) must equal ACC_W (%0d)", OUT_W, ACC_W);
    end

    localparam int NF      = CH / PE;
    localparam int SF      = KK / SIMD;
    localparam int NF_W    = NF > 1 ? $clog2(NF) : 1;
    localparam int SF_W    = SF > 1 ? $clog2(SF) : 1;
    localparam int WADDR_W = NF * SF > 1 ? $clog2(NF * SF) : 1;
    localparam int WWORD_W = PE * SIMD * W_W;
    localparam int XWORD_W = SIMD * PE * IN_W;

    // ---------------------------------------------------------------- control
    logic [NF_W-1:0]    nf_reg;     // channel fold of the next beat (fastest)
    logic [WADDR_W-1:0] waddr_reg;  // the weights of the beat (window slice, nf_reg)
    logic               space;      // mac_pipeline's queue has room for one more result
    logic first_sf, last_sf;        // the beat is of the window's first / last slice
    // verilator lint_off UNUSEDSIGNAL
    logic [SF_W-1:0]    sf_reg;     // window slice of the next beat (its flags are what is used)
    logic first_nf, last_nf;        // nf_reg == 0, nf_reg == NF-1: the counter wraps by itself
    // verilator lint_on UNUSEDSIGNAL

    // every beat of a window's last slice finishes a channel fold: it needs a place in the queue
    wire can_issue = !last_sf || space;
    wire issue     = can_issue && s_axis_tvalid;

    assign s_axis_tready = can_issue;

    fold_counter #(
        .INNER(NF), .OUTER(SF)
    ) u_count (
        .clk(clk), .rst(rst), .step(issue),
        .inner(nf_reg), .outer(sf_reg), .addr(waddr_reg),
        .inner_first(first_nf), .inner_last(last_nf), .outer_first(first_sf), .outer_last(last_sf)
    );

    // ---------------------------------------------------------------- weights
    // read every cycle at a register's address: block RAM friendly, no logic before the read
    logic [WWORD_W-1:0] wmem [NF * SF];
    initial $readmemh(WEIGHT_FILE, wmem);

    logic [WWORD_W-1:0] w_ram;  // the weights of the beat issued in the cycle before
    always_ff @(posedge clk) begin
        w_ram <= wmem[waddr_reg];
    end

    // ---------------------------------------------------------------- the issued beat, registered
    logic [XWORD_W-1:0] x_reg;
    logic               v_reg, first_reg, last_reg;
    logic [NF_W-1:0]    fold_reg;
    always_ff @(posedge clk) begin
        x_reg     <= s_axis_tdata;
        v_reg     <= issue;
        first_reg <= first_sf;
        last_reg  <= last_sf;
        fold_reg  <= nf_reg;
        if (rst) v_reg <= 1'b0;
    end

    mac_pipeline #(
        .PE(PE), .SIMD(SIMD), .X_PER_PE(1'b1), .NF(NF), .ACC_MEM(NF > 1),
        .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR),
        .W_W(W_W), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR),
        .ACC_W(ACC_W), .NUM_T(NUM_T), .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .THRESH_FILE(THRESH_FILE),
        .THR_SEARCH(THR_SEARCH), .THR_BRAM(THR_BRAM), .THRESH_PREFIX(THRESH_PREFIX)
    ) u_mac (
        .clk(clk), .rst(rst),
        .in_valid(v_reg), .in_first(first_reg), .in_last(last_reg), .in_fold(fold_reg),
        .in_x(x_reg), .in_w(w_ram),
        .reserve(issue && last_sf), .space(space),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
