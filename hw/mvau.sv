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
    if (PE < 1 || MH % PE != 0) begin : g_bad_pe
        $fatal(1, "%m: PE (%0d) must divide MH (%0d)", PE, MH);
    end
    if (SIMD < 1 || MW % SIMD != 0) begin : g_bad_simd
        $fatal(1, "%m: MW (%0d) must be a multiple of SIMD (%0d)", MW, SIMD);
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

    localparam int NF      = MH / PE;
    localparam int SF      = MW / SIMD;
    localparam int NF_W    = NF > 1 ? $clog2(NF) : 1;
    localparam int SF_W    = SF > 1 ? $clog2(SF) : 1;
    localparam int WADDR_W = NF * SF > 1 ? $clog2(NF * SF) : 1;
    localparam int WWORD_W = PE * SIMD * W_W;
    localparam int XWORD_W = SIMD * IN_W;
    localparam bit XNOR    = IN_BIPOLAR && W_BIPOLAR;
    // narrow products become shift-and-add logic; only wide ones are left to multipliers (DSPs)
    localparam bit USE_MUL = !IN_BIPOLAR && !W_BIPOLAR && IN_W > 4 && W_W > 4;
    // wide dot products: registered partial sums of GROUP products each (stage 1a), so no cycle
    // holds more than a GROUP-input adder tree or an NG-input one
    localparam int GROUP   = 8;
    localparam bit SPLIT   = SIMD > GROUP;
    localparam int NG      = (SIMD + GROUP - 1) / GROUP;

    // ---------------------------------------------------------------- control
    logic [SF_W-1:0]    sf_reg;
    logic [NF_W-1:0]    nf_reg;
    logic [WADDR_W-1:0] waddr_reg, waddr_next;

    logic v0_reg, first0_reg, last0_reg;  // stage 0: one slice and its weights, registered
    logic v1_reg, first1_reg, last1_reg;  // stage 1: dot products of one slice
    logic v2_reg;                         // stage 2: a finished accumulator
    logic slice_ready;

    // the pipeline moves unless a finished result waits for the output slice
    wire en    = !v2_reg || slice_ready;
    wire first_fold = nf_reg == '0;
    wire issue = en && (!first_fold || s_axis_tvalid);
    wire last_sf = sf_reg == SF_W'(SF - 1);
    wire last_nf = nf_reg == NF_W'(NF - 1);

    assign s_axis_tready = en && first_fold;

    always_comb begin
        waddr_next = waddr_reg;
        if (issue) waddr_next = (last_sf && last_nf) ? '0 : waddr_reg + 1'b1;
        if (rst) waddr_next = '0;
    end

    always_ff @(posedge clk) begin
        waddr_reg <= waddr_next;
        if (issue) begin
            sf_reg <= last_sf ? '0 : sf_reg + 1'b1;
            if (last_sf) nf_reg <= last_nf ? '0 : nf_reg + 1'b1;
        end
        if (rst) begin
            sf_reg <= '0;
            nf_reg <= '0;
        end
    end

    // ---------------------------------------------------------------- weights (read a cycle ahead)
    logic [WWORD_W-1:0] wmem [NF * SF];
    initial $readmemh(WEIGHT_FILE, wmem);

    logic [WWORD_W-1:0] w_q;  // wmem[waddr_reg]
    always_ff @(posedge clk) begin
        w_q <= wmem[waddr_next];
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

    // ---------------------------------------------------------------- stage 0: register the slice
    logic [XWORD_W-1:0] x_q;
    logic [WWORD_W-1:0] w_q0;
    always_ff @(posedge clk) begin
        if (en) begin
            v0_reg     <= issue;
            first0_reg <= sf_reg == '0;
            last0_reg  <= last_sf;
            x_q        <= x_cur;
            w_q0       <= w_q;
        end
        if (rst) v0_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 1: dot products
    function automatic logic signed [ACC_W-1:0] product(
        input logic [IN_W-1:0] xv, input logic [W_W-1:0] wv
    );
        logic signed [ACC_W-1:0] xe, we, r;
        logic match;
        xe = IN_SIGNED ? ACC_W'($signed(xv)) : ACC_W'(xv);
        we = W_SIGNED ? ACC_W'($signed(wv)) : ACC_W'(wv);
        r = '0;
        match = 1'b0;
        if (XNOR) begin
            match = xv[0] ~^ wv[0];  // 1 bit: the signs agree
            r = ACC_W'(match);
        end else if (W_BIPOLAR) begin
            r = wv[0] ? xe : -xe;
        end else if (IN_BIPOLAR) begin
            r = xv[0] ? we : -we;
        end else if (USE_MUL) begin
            r = xe * we;
        end else if (W_W <= IN_W) begin
            for (int i = 0; i < W_W; i++) begin
                if (wv[i]) r = (W_SIGNED && i == W_W - 1) ? r - (xe <<< i) : r + (xe <<< i);
            end
        end else begin
            for (int i = 0; i < IN_W; i++) begin
                if (xv[i]) r = (IN_SIGNED && i == IN_W - 1) ? r - (we <<< i) : r + (we <<< i);
            end
        end
        product = r;
    endfunction

    logic [PE*ACC_W-1:0] dot, dot1_reg;
    logic v1_in, first1_in, last1_in;  // what enters stage 1's registers

    if (SPLIT) begin : g_split
        // stage 1a: NG partial sums per PE
        logic [PE*NG*ACC_W-1:0] part, part_reg;
        logic va_reg, firsta_reg, lasta_reg;
        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                for (int g = 0; g < NG; g++) begin
                    logic signed [ACC_W-1:0] sum;
                    sum = '0;
                    for (int s = g * GROUP; s < (g + 1) * GROUP && s < SIMD; s++) begin
                        sum = sum + product(x_q[s*IN_W +: IN_W], w_q0[(pe*SIMD + s)*W_W +: W_W]);
                    end
                    part[(pe*NG + g)*ACC_W +: ACC_W] = sum;
                end
            end
        end
        always_ff @(posedge clk) begin
            if (en) begin
                va_reg     <= v0_reg;
                firsta_reg <= first0_reg;
                lasta_reg  <= last0_reg;
                part_reg   <= part;
            end
            if (rst) va_reg <= 1'b0;
        end
        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                logic signed [ACC_W-1:0] sum;
                sum = '0;
                for (int g = 0; g < NG; g++) sum = sum + part_reg[(pe*NG + g)*ACC_W +: ACC_W];
                dot[pe*ACC_W +: ACC_W] = sum;
            end
        end
        assign v1_in = va_reg;
        assign first1_in = firsta_reg;
        assign last1_in = lasta_reg;
    end else begin : g_direct
        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                logic signed [ACC_W-1:0] sum;
                sum = '0;
                for (int s = 0; s < SIMD; s++) begin
                    sum = sum + product(x_q[s*IN_W +: IN_W], w_q0[(pe*SIMD + s)*W_W +: W_W]);
                end
                dot[pe*ACC_W +: ACC_W] = sum;
            end
        end
        assign v1_in = v0_reg;
        assign first1_in = first0_reg;
        assign last1_in = last0_reg;
    end

    always_ff @(posedge clk) begin
        if (en) begin
            v1_reg     <= v1_in;
            first1_reg <= first1_in;
            last1_reg  <= last1_in;
            dot1_reg   <= dot;
        end
        if (rst) v1_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 2: accumulate
    logic [PE*ACC_W-1:0] acc_reg;
    always_ff @(posedge clk) begin
        if (en) begin
            v2_reg <= v1_reg && last1_reg;
            if (v1_reg) begin
                for (int pe = 0; pe < PE; pe++) begin
                    acc_reg[pe*ACC_W +: ACC_W] <= (first1_reg ? ACC_W'(0) : acc_reg[pe*ACC_W +: ACC_W])
                                                  + dot1_reg[pe*ACC_W +: ACC_W];
                end
            end
        end
        if (rst) v2_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 3: activation
    logic [PE*OUT_W-1:0] act;

    if (NUM_T > 0) begin : g_thresholds
        localparam int TWORD_W = PE * NUM_T * ACC_W;
        logic [TWORD_W-1:0] tmem [NF];
        initial $readmemh(THRESH_FILE, tmem);

        // loaded together with acc_reg, from the fold whose last slice is in stage 1
        logic [NF_W-1:0]    nf0_reg, nf_mid, nf1_reg;
        logic [TWORD_W-1:0] thr_q;
        if (SPLIT) begin : g_nf_split
            logic [NF_W-1:0] nfa_reg;
            always_ff @(posedge clk) begin
                if (en) nfa_reg <= nf0_reg;
            end
            assign nf_mid = nfa_reg;
        end else begin : g_nf_direct
            assign nf_mid = nf0_reg;
        end
        always_ff @(posedge clk) begin
            if (en) begin
                nf0_reg <= nf_reg;
                nf1_reg <= nf_mid;
                thr_q   <= tmem[nf1_reg];
            end
        end

        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                logic [OUT_W-1:0] count;
                count = OUT_W'(OUT_OFFSET);
                for (int t = 0; t < NUM_T; t++) begin
                    if ($signed(thr_q[(pe*NUM_T + t)*ACC_W +: ACC_W]) <= $signed(acc_reg[pe*ACC_W +: ACC_W])) begin
                        count = count + 1'b1;
                    end
                end
                act[pe*OUT_W +: OUT_W] = count;
            end
        end
    end else begin : g_no_thresholds
        assign act = acc_reg;
    end

    skid_buffer #(
        .DATA_W(PE*OUT_W)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(act),
        .s_axis_tvalid(v2_reg),
        .s_axis_tready(slice_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
