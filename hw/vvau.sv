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
//             synchronously (block RAM friendly).
// Timing    : one input beat per cycle, each beat used once (no input buffer): a window takes
//             NF*SF cycles and windows follow back to back without a gap. The NF partial sums of
//             a window (one per channel fold) are kept in an NF-word accumulator memory (with
//             NF = 1, a register); the NF output beats of a window come out during its last SIMD
//             slice, one per cycle. Latency from a window's last input beat to its last output
//             beat: 4 cycles, 5 when SIMD > GROUP (the dot products are then summed in two
//             registered halves). The input slice and its weights are registered before the
//             products (stage 0), as in hw/mvau.sv.
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
//   WEIGHT_FILE, THRESH_FILE  $readmemh files (THRESH_FILE unused when NUM_T = 0)

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
    parameter     THRESH_FILE = ""
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
    localparam bit XNOR    = IN_BIPOLAR && W_BIPOLAR;
    // narrow products become shift-and-add logic; only wide ones are left to multipliers (DSPs)
    localparam bit USE_MUL = !IN_BIPOLAR && !W_BIPOLAR && IN_W > 4 && W_W > 4;
    // wide dot products: registered partial sums of GROUP products each (stage 1a)
    localparam int GROUP   = 8;
    localparam bit SPLIT   = SIMD > GROUP;
    localparam int NG      = (SIMD + GROUP - 1) / GROUP;

    // ---------------------------------------------------------------- control
    logic [NF_W-1:0]    nf_reg;  // channel fold of the next beat (fastest)
    logic [SF_W-1:0]    sf_reg;  // window slice of the next beat
    logic [WADDR_W-1:0] waddr_reg, waddr_next;

    logic v0_reg, first0_reg, last0_reg;  // stage 0: one beat and its weights, registered
    logic v1_reg, first1_reg, last1_reg;  // stage 1: dot products of one beat
    logic v2_reg;                         // stage 2: a finished channel fold
    // the channel fold of stages 0 and 1: it addresses the accumulator memory and the thresholds,
    // so with NF = 1 and no thresholds nothing reads it
    // verilator lint_off UNUSEDSIGNAL
    logic [NF_W-1:0] nf0_reg, nf1_reg;
    // verilator lint_on UNUSEDSIGNAL
    logic slice_ready;

    // the pipeline moves unless a finished result waits for the output slice
    wire en      = !v2_reg || slice_ready;
    wire issue   = en && s_axis_tvalid;
    wire last_nf = nf_reg == NF_W'(NF - 1);
    wire last_sf = sf_reg == SF_W'(SF - 1);

    assign s_axis_tready = en;

    always_comb begin
        waddr_next = waddr_reg;
        if (issue) waddr_next = (last_nf && last_sf) ? '0 : waddr_reg + 1'b1;
        if (rst) waddr_next = '0;
    end

    always_ff @(posedge clk) begin
        waddr_reg <= waddr_next;
        if (issue) begin
            nf_reg <= last_nf ? '0 : nf_reg + 1'b1;
            if (last_nf) sf_reg <= last_sf ? '0 : sf_reg + 1'b1;
        end
        if (rst) begin
            nf_reg <= '0;
            sf_reg <= '0;
        end
    end

    // ---------------------------------------------------------------- weights (read a cycle ahead)
    logic [WWORD_W-1:0] wmem [NF * SF];
    initial $readmemh(WEIGHT_FILE, wmem);

    logic [WWORD_W-1:0] w_q;  // wmem[waddr_reg]
    always_ff @(posedge clk) begin
        w_q <= wmem[waddr_next];
    end

    // ---------------------------------------------------------------- stage 0: register the beat
    logic [XWORD_W-1:0] x_q;
    logic [WWORD_W-1:0] w_q0;
    always_ff @(posedge clk) begin
        if (en) begin
            v0_reg     <= issue;
            first0_reg <= sf_reg == '0;
            last0_reg  <= last_sf;
            nf0_reg    <= nf_reg;
            x_q        <= s_axis_tdata;
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

    // channel pe, window position s of the beat: x element s*PE + pe, weight element pe*SIMD + s
    function automatic logic signed [ACC_W-1:0] term(
        input logic [XWORD_W-1:0] xw, input logic [WWORD_W-1:0] ww, input int pe, input int s
    );
        term = product(xw[(s*PE + pe)*IN_W +: IN_W], ww[(pe*SIMD + s)*W_W +: W_W]);
    endfunction

    logic [PE*ACC_W-1:0] dot, dot1_reg;
    logic v1_in, first1_in, last1_in;
    logic [NF_W-1:0] nf1_in;

    if (SPLIT) begin : g_split
        // stage 1a: NG partial sums per channel
        logic [PE*NG*ACC_W-1:0] part, part_reg;
        logic va_reg, firsta_reg, lasta_reg;
        logic [NF_W-1:0] nfa_reg;
        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                for (int g = 0; g < NG; g++) begin
                    logic signed [ACC_W-1:0] sum;
                    sum = '0;
                    for (int s = g * GROUP; s < (g + 1) * GROUP && s < SIMD; s++) sum = sum + term(x_q, w_q0, pe, s);
                    part[(pe*NG + g)*ACC_W +: ACC_W] = sum;
                end
            end
        end
        always_ff @(posedge clk) begin
            if (en) begin
                va_reg     <= v0_reg;
                firsta_reg <= first0_reg;
                lasta_reg  <= last0_reg;
                nfa_reg    <= nf0_reg;
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
        assign nf1_in = nfa_reg;
    end else begin : g_direct
        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                logic signed [ACC_W-1:0] sum;
                sum = '0;
                for (int s = 0; s < SIMD; s++) sum = sum + term(x_q, w_q0, pe, s);
                dot[pe*ACC_W +: ACC_W] = sum;
            end
        end
        assign v1_in = v0_reg;
        assign first1_in = first0_reg;
        assign last1_in = last0_reg;
        assign nf1_in = nf0_reg;
    end

    always_ff @(posedge clk) begin
        if (en) begin
            v1_reg     <= v1_in;
            first1_reg <= first1_in;
            last1_reg  <= last1_in;
            nf1_reg    <= nf1_in;
            dot1_reg   <= dot;
        end
        if (rst) v1_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 2: accumulate
    // the partial sums of channel fold nf1_reg: a register when NF = 1, else an NF-word memory
    // read asynchronously (LUT RAM); a fold is written back NF >= 2 cycles before its next read
    logic [PE*ACC_W-1:0] acc_old, acc_sum, res_reg;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            acc_sum[pe*ACC_W +: ACC_W] = (first1_reg ? ACC_W'(0) : acc_old[pe*ACC_W +: ACC_W])
                                         + dot1_reg[pe*ACC_W +: ACC_W];
        end
    end

    if (NF > 1) begin : g_acc_mem
        logic [PE*ACC_W-1:0] acc_mem [NF];
        always_ff @(posedge clk) begin
            if (en && v1_reg) acc_mem[nf1_reg] <= acc_sum;
        end
        assign acc_old = acc_mem[nf1_reg];
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
            if (en) thr_q <= tmem[nf1_reg];
        end

        always_comb begin
            for (int pe = 0; pe < PE; pe++) begin
                logic [OUT_W-1:0] count;
                count = OUT_W'(OUT_OFFSET);
                for (int t = 0; t < NUM_T; t++) begin
                    if ($signed(thr_q[(pe*NUM_T + t)*ACC_W +: ACC_W]) <= $signed(res_reg[pe*ACC_W +: ACC_W])) begin
                        count = count + 1'b1;
                    end
                end
                act[pe*OUT_W +: OUT_W] = count;
            end
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
