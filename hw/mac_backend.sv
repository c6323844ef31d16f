// mac_backend: the pipeline that hw/mvau.sv and hw/vvau.sv share, from one slice of input
// elements to the output stream: weights, dot products, accumulation, thresholds, output slice.
//
// Function  : each issued beat (a slice of SIMD input elements per row, for PE rows) is
//             multiplied with its weights and summed per row into a dot product (in ACC_W bits,
//             wrapping; x and w unsigned, two's complement or bipolar, one bit, 0 meaning -1;
//             with both bipolar the XNOR-popcount); the dot products of the beats of one fold
//             (first .. last) are accumulated per row. With NUM_T > 0 the result of a fold is the
//             multi-threshold activation (hw/threshold_count.sv) of each row's sum with that
//             fold's thresholds, else the sum itself (OUT_W = ACC_W). Each finished fold is one
//             output beat of PE elements.
// Beats     : the user issues one beat per cycle at most, and only while `en` is high. With a
//             beat come `last_word` (it is the last beat of a vector: the weight address returns
//             to word 0), `first` and `last` (its slice is the first / last of its fold's
//             accumulation), `fold` (which of the NF folds it belongs to: its thresholds, and its
//             accumulator when INTERLEAVED) and x. The input elements of row pe, position s are
//             x element s when X_PER_ROW = 0 (every row sees the same SIMD elements: mvau) and x
//             element s*PE + pe when X_PER_ROW = 1 (each row its own: vvau's window beat);
//             element i at bits [i*IN_W +: IN_W].
//             INTERLEAVED = 0: a fold's beats come one after another (mvau), one accumulator
//             register per row; INTERLEAVED = 1: the folds take turns beat by beat (vvau's
//             channel folds), so each fold keeps its partial sums in an NF-word accumulator
//             memory (LUT RAM, read asynchronously; a word is written back NF >= 2 cycles before
//             its next read). With NF = 1 both are the same register.
// Memories  : WEIGHT_FILE holds NF*SF words of PE*SIMD weights, one word per issued beat in the
//             order the beats are issued (word i for the i-th beat of a vector, modulo NF*SF;
//             element pe*SIMD+s = the weight of row pe, position s), read a cycle ahead so that
//             the word of a beat is there when it is issued. THRESH_FILE holds NF words of
//             PE*NUM_T thresholds of ACC_W bits (word nf, element pe*NUM_T+t = threshold t of
//             row pe of fold nf). Both are read synchronously (block RAM friendly).
// Timing    : stage 0 registers the beat and its weights (so neither a block-RAM read nor the
//             user's input multiplexing shares a cycle with the adder tree); stage 1 holds the
//             dot products, summed in two registered halves when SIMD > GROUP (stage 1a: partial
//             sums of GROUP products, then their sum); stage 2 the accumulator; the output slice
//             (skid_buffer) the activation. Latency from a fold's last issued beat to its output
//             beat: 4 cycles, 5 when SIMD > GROUP. Throughput: one beat per cycle.
// Ready     : en = the pipeline moves: low only while a finished result waits for the output
//             slice, whose ready is a register; so en depends on registers only, with no
//             combinational path from m_axis_tready.
//
// Parameters:
//   PE, SIMD     rows per beat, input elements per row per beat
//   NF, SF       folds (output beats) per vector, beats per fold
//   X_PER_ROW    0: x is SIMD elements shared by the rows; 1: PE*SIMD elements (see Beats)
//   INTERLEAVED  0: a fold's beats are consecutive; 1: the folds' beats take turns (see Beats)
//   IN_W         input element width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1,+1} (IN_W = 1)
//   W_W          weight width; W_SIGNED: two's complement (ternary is W_W = 2 signed);
//                W_BIPOLAR: {-1,+1} (W_W = 1); wide products (IN_W > 4 and W_W > 4) are left to
//                multipliers (DSPs), narrow ones are shift-and-add logic
//   ACC_W        accumulator width (signed), 2..32
//   NUM_T        thresholds per row; 0 for no activation
//   OUT_W        output element width (= ACC_W when NUM_T = 0)
//   OUT_OFFSET   signed offset added to the threshold count
//   WEIGHT_FILE, THRESH_FILE  $readmemh files (THRESH_FILE unused when NUM_T = 0)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mac_backend #(
    parameter int PE          = 2,
    parameter int SIMD        = 4,
    parameter int NF          = 2,
    parameter int SF          = 2,
    parameter bit X_PER_ROW   = 1'b0,
    parameter bit INTERLEAVED = 1'b0,
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
    // the widths of the fold and x ports
    localparam int NF_W       = NF > 1 ? $clog2(NF) : 1,
    localparam int XWORD_W    = (X_PER_ROW ? PE : 1) * SIMD * IN_W
) (
    input  wire logic               clk,
    input  wire logic               rst,

    output wire logic               en,
    input  wire logic               issue,
    input  wire logic               last_word,
    input  wire logic               first,
    input  wire logic               last,
    // the fold addresses the thresholds and the accumulator memory: with neither, nothing reads it
    // verilator lint_off UNUSEDSIGNAL
    input  wire logic [NF_W-1:0]    fold,
    // verilator lint_on UNUSEDSIGNAL
    input  wire logic [XWORD_W-1:0] x,

    output wire logic [PE*OUT_W-1:0] m_axis_tdata,
    output wire logic               m_axis_tvalid,
    input  wire logic               m_axis_tready
);

    // ---------------------------------------------------------------- configuration checks
    if (PE < 1 || SIMD < 1 || NF < 1 || SF < 1) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d), SIMD (%0d), NF (%0d) and SF (%0d) must be at least 1", PE, SIMD, NF, SF);
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

    localparam int WADDR_W = NF * SF > 1 ? $clog2(NF * SF) : 1;
    localparam int WWORD_W = PE * SIMD * W_W;
    localparam bit XNOR    = IN_BIPOLAR && W_BIPOLAR;
    // narrow products become shift-and-add logic; only wide ones are left to multipliers (DSPs)
    localparam bit USE_MUL = !IN_BIPOLAR && !W_BIPOLAR && IN_W > 4 && W_W > 4;
    // wide dot products: registered partial sums of GROUP products each (stage 1a), so no cycle
    // holds more than a GROUP-input adder tree or an NG-input one
    localparam int GROUP   = 8;
    localparam bit SPLIT   = SIMD > GROUP;
    localparam int NG      = (SIMD + GROUP - 1) / GROUP;

    logic v0_reg, first0_reg, last0_reg;  // stage 0: one beat and its weights, registered
    logic v1_reg, first1_reg, last1_reg;  // stage 1: dot products of one beat
    logic v2_reg;                         // stage 2: a finished fold
    // verilator lint_off UNUSEDSIGNAL
    logic [NF_W-1:0] fold0_reg, fold1_reg;  // the fold of stages 0 and 1 (see the port)
    // verilator lint_on UNUSEDSIGNAL
    logic slice_ready;

    // the pipeline moves unless a finished result waits for the output slice
    assign en = !v2_reg || slice_ready;

    // ---------------------------------------------------------------- weights (read a cycle ahead)
    logic [WADDR_W-1:0] waddr_reg, waddr_next;
    always_comb begin
        waddr_next = waddr_reg;
        if (issue) waddr_next = last_word ? '0 : waddr_reg + 1'b1;
        if (rst) waddr_next = '0;
    end

    logic [WWORD_W-1:0] wmem [NF * SF];
    initial $readmemh(WEIGHT_FILE, wmem);

    logic [WWORD_W-1:0] w_q;  // wmem[waddr_reg]: the weights of the beat issued now
    always_ff @(posedge clk) begin
        waddr_reg <= waddr_next;
        w_q       <= wmem[waddr_next];
    end

    // ---------------------------------------------------------------- stage 0: register the beat
    logic [XWORD_W-1:0] x_q;
    logic [WWORD_W-1:0] w_q0;
    always_ff @(posedge clk) begin
        if (en) begin
            v0_reg     <= issue;
            first0_reg <= first;
            last0_reg  <= last;
            fold0_reg  <= fold;
            x_q        <= x;
            w_q0       <= w_q;
        end
        if (rst) v0_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 1: dot products
    // the product of an input element and a weight in ACC_W bits (wrapping): a bipolar operand
    // selects +/- the other, two bipolar ones give the XNOR (1 when the signs agree, the term of an
    // XNOR-popcount); a function, not a module, so that synthesis that keeps the hierarchy
    // (synth_xilinx) can still merge the products into the adder tree
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
            match = xv[0] ~^ wv[0];  // the signs agree (in 1 bit: wider operands would XNOR 0s to 1s)
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

    // the product of row pe, position s of a registered beat (see Beats for x's layout)
    function automatic logic signed [ACC_W-1:0] term(
        input logic [XWORD_W-1:0] xw, input logic [WWORD_W-1:0] ww, input int pe, input int s
    );
        term = product(xw[(X_PER_ROW ? s * PE + pe : s)*IN_W +: IN_W], ww[(pe*SIMD + s)*W_W +: W_W]);
    endfunction

    // the dot product of each row: NG partial sums of GROUP products each, then their sum; when
    // SIMD > GROUP the partial sums are registered between the two (stage 1a), else NG = 1 and
    // the partial sum is the dot product
    logic [PE*NG*ACC_W-1:0] part, part_q;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            for (int g = 0; g < NG; g++) begin
                logic signed [ACC_W-1:0] sum;
                sum = '0;
                for (int s = g * GROUP; s < (g + 1) * GROUP && s < SIMD; s++) begin
                    sum = sum + term(x_q, w_q0, pe, s);
                end
                part[(pe*NG + g)*ACC_W +: ACC_W] = sum;
            end
        end
    end

    logic v1_in, first1_in, last1_in;  // what enters stage 1's registers
    logic [NF_W-1:0] fold1_in;

    if (SPLIT) begin : g_split
        logic [PE*NG*ACC_W-1:0] part_reg;
        logic va_reg, firsta_reg, lasta_reg;
        logic [NF_W-1:0] folda_reg;
        always_ff @(posedge clk) begin
            if (en) begin
                va_reg     <= v0_reg;
                firsta_reg <= first0_reg;
                lasta_reg  <= last0_reg;
                folda_reg  <= fold0_reg;
                part_reg   <= part;
            end
            if (rst) va_reg <= 1'b0;
        end
        assign part_q = part_reg;
        assign v1_in = va_reg;
        assign first1_in = firsta_reg;
        assign last1_in = lasta_reg;
        assign fold1_in = folda_reg;
    end else begin : g_direct
        assign part_q = part;
        assign v1_in = v0_reg;
        assign first1_in = first0_reg;
        assign last1_in = last0_reg;
        assign fold1_in = fold0_reg;
    end

    logic [PE*ACC_W-1:0] dot, dot1_reg;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            logic signed [ACC_W-1:0] sum;
            sum = part_q[pe*NG*ACC_W +: ACC_W];
            for (int g = 1; g < NG; g++) sum = sum + part_q[(pe*NG + g)*ACC_W +: ACC_W];
            dot[pe*ACC_W +: ACC_W] = sum;
        end
    end

    always_ff @(posedge clk) begin
        if (en) begin
            v1_reg     <= v1_in;
            first1_reg <= first1_in;
            last1_reg  <= last1_in;
            fold1_reg  <= fold1_in;
            dot1_reg   <= dot;
        end
        if (rst) v1_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 2: accumulate
    // the partial sums of fold fold1_reg: acc_old is what has been summed before this beat
    logic [PE*ACC_W-1:0] acc_old, acc_sum, res_reg;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            acc_sum[pe*ACC_W +: ACC_W] = (first1_reg ? ACC_W'(0) : acc_old[pe*ACC_W +: ACC_W])
                                         + dot1_reg[pe*ACC_W +: ACC_W];
        end
    end

    if (INTERLEAVED && NF > 1) begin : g_acc_mem
        logic [PE*ACC_W-1:0] acc_mem [NF];
        always_ff @(posedge clk) begin
            if (en && v1_reg) acc_mem[fold1_reg] <= acc_sum;
        end
        assign acc_old = acc_mem[fold1_reg];
    end else begin : g_acc_reg
        assign acc_old = res_reg;
    end

    always_ff @(posedge clk) begin
        if (en) begin
            v2_reg <= v1_reg && last1_reg;
            if (v1_reg) res_reg <= acc_sum;
        end
        if (rst) v2_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 3: activation
    logic [PE*OUT_W-1:0] act;

    if (NUM_T > 0) begin : g_thresholds
        localparam int TWORD_W = PE * NUM_T * ACC_W;
        logic [TWORD_W-1:0] tmem [NF];
        initial $readmemh(THRESH_FILE, tmem);

        logic [TWORD_W-1:0] thr_q;  // the thresholds of the fold in res_reg, loaded with it
        always_ff @(posedge clk) begin
            if (en) thr_q <= tmem[fold1_reg];
        end

        for (genvar pe = 0; pe < PE; pe++) begin : g_row
            threshold_count #(
                .NUM_T(NUM_T), .IN_W(ACC_W), .IN_SIGNED(1'b1), .IN_BIPOLAR(1'b0), .THR_W(ACC_W),
                .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET)
            ) u_count (
                .value(res_reg[pe*ACC_W +: ACC_W]),
                .thresholds(thr_q[pe*NUM_T*ACC_W +: NUM_T*ACC_W]),
                .count(act[pe*OUT_W +: OUT_W])
            );
        end
    end else begin : g_no_thresholds
        assign act = res_reg;
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
