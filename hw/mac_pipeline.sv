// mac_pipeline: the arithmetic half of hw/mvau.sv and hw/vvau.sv: products, adder trees,
// accumulation, the multi-threshold activation and an output queue, free-running.
//
// Function  : a slice is PE lanes of SIMD products. Lane pe, product s multiplies input element
//             s (X_PER_PE = 0, the input is shared by the lanes: MVAU) or s*PE + pe
//             (X_PER_PE = 1: depthwise, VVAU) of in_x with weight element pe*SIMD + s of in_w.
//             With IN_BIPOLAR and W_BIPOLAR both set a product is 1 when the signs agree, else 0
//             (XNOR-popcount). The dot products of the slices of one fold are accumulated
//             (in_first starts a fold, in_last ends it): in one register per lane (ACC_MEM = 0,
//             folds one after another) or in an NF-word memory addressed by in_fold (ACC_MEM = 1,
//             folds interleaved slice by slice). At the end of a fold, with NUM_T > 0, lane pe's
//             output is (number of thresholds t of row in_fold*PE + pe with t <= acc) + OUT_OFFSET
//             in OUT_W bits; with NUM_T = 0 it is the accumulator (OUT_W = ACC_W).
//             THRESH_FILE holds NF words of PE*NUM_T thresholds of ACC_W bits (word f, element
//             pe*NUM_T + t), as written by qnnflow.flows.codegen.memfiles.threshold_words. With
//             THR_SEARCH (each row's thresholds non-decreasing) the count is found by binary search
//             instead (hw/threshold_search.sv), from its per-stage, per-lane files
//             THRESH_PREFIX_s<k>_l<pe>.mem (memfiles.threshold_search_words).
// Interface : in_x and the in_* flags are registers of the user's, in_w is the synchronous read
//             of the user's weight memory in the same cycle (both are registered again here, so
//             a block-RAM output meets no logic). The pipeline never stops, so it cannot refuse
//             a result: the user asserts `reserve` in the cycle it issues the last slice of a
//             fold, and issues such a slice only while `space` is high. The queue then always
//             has room, and m_axis_tready stops the user, not the pipeline. `space` depends on
//             registers only.
// Latency   : from a slice on in_* to its fold's output beat on m_axis (queue empty):
//             LATENCY = 1 (input registers) + T_MAC + 1 (accumulate) + [NUM_T > 0: 1 (threshold
//             read registered) + [NUM_T > 3 or THR_BRAM: 1 (registered again, THR_REG2)] + hw/threshold_count.sv's
//             1 + T_THR (adder_tree over NUM_T bits, PRE = 0); with THR_SEARCH instead
//             hw/threshold_search.sv's 6 * clog2(NUM_T + 1), from the accumulator's register and its
//             fold] + 2 (queue), where T_MAC is an adder_tree with LPS = 2 over SIMD * K
//             terms: K = 1 and PRE = 1 when a product is at most one level of logic (XNOR, a
//             bipolar operand, or a shift-and-add of two partial products, computed in front of
//             the tree's first level); K = the narrower operand's width and PRE = 1 when a
//             shift-and-add product has three or more partial products (SPLIT: each partial
//             product, masked and for a sign bit negated, is a term of the tree itself, so no
//             chain of adders is ever longer than the tree's two levels per stage); with
//             multipliers (USE_MUL: both operands wider than 4 bits) K = 1, T_MAC = 2 (operands
//             registered again beside the multiplier, its product registered) + the tree over SIMD
//             terms with PRE = 0 and LPS = 1 (a register after every adder level). With masked
//             sums (MSUM: an MVAU's bipolar weights on a non-bipolar input, or 2-bit signed
//             weights on an input of 3 bits or more; see MSUM below) K = 1, PRE = 1 and T_MAC is
//             the tree's stages + 1 (the two trees' sums combined, registered).
//             qnnflow.flows.compile.latency uses the same formula.
// Throughput: one slice per cycle; one output beat per cycle while `space` allows. QDEPTH is
//             the in-flight results the credits allow: LATENCY + 4 + IN_DELAY covers the round
//             trip (hw/credit_queue.sv), so a fold per cycle (SF = 1) streams without a gap.
//             IN_DELAY: cycles the user adds between `reserve` and the slice on in_* beyond its
//             one register (hw/mvau.sv's banked weights: 1).
//
// Parameters: PE, SIMD, IN_W, IN_SIGNED, IN_BIPOLAR, W_W, W_SIGNED, W_BIPOLAR, ACC_W, NUM_T, OUT_W,
//             OUT_OFFSET, THRESH_FILE, THR_SEARCH, THR_BRAM, THRESH_PREFIX as in hw/mvau.sv; NF folds
//             (threshold words, accumulator memory words); X_PER_PE, ACC_MEM as above.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mac_pipeline #(
    parameter int PE          = 2,
    parameter int SIMD        = 4,
    parameter bit X_PER_PE    = 1'b0,
    parameter int NF          = 2,
    parameter bit ACC_MEM     = 1'b0,
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
    parameter     THRESH_FILE = "",
    parameter bit THR_SEARCH  = 1'b0,
    parameter bit THR_BRAM    = 1'b0,
    parameter int IN_DELAY    = 0,
    parameter     THRESH_PREFIX = "",
    localparam int NF_W       = NF > 1 ? $clog2(NF) : 1,
    localparam int XWORD_W    = (X_PER_PE ? PE : 1) * SIMD * IN_W,
    localparam int WWORD_W    = PE * SIMD * W_W
) (
    input  wire logic                 clk,
    input  wire logic                 rst,

    input  wire logic                 in_valid,
    input  wire logic                 in_first,
    input  wire logic                 in_last,
    input  wire logic [NF_W-1:0]      in_fold,
    input  wire logic [XWORD_W-1:0]   in_x,
    input  wire logic [WWORD_W-1:0]   in_w,

    input  wire logic                 reserve,
    output wire logic                 space,

    output wire logic [PE*OUT_W-1:0]  m_axis_tdata,
    output wire logic                 m_axis_tvalid,
    input  wire logic                 m_axis_tready
);

    localparam bit XNOR    = IN_BIPOLAR && W_BIPOLAR;
    // narrow products become shift-and-add logic; only wide ones are left to multipliers (DSPs)
    localparam bit USE_MUL = !IN_BIPOLAR && !W_BIPOLAR && IN_W > 4 && W_W > 4;
    // shift-and-add products of three or more partial products give the partial products to the tree
    localparam bit ALONG_W  = W_W <= IN_W;  // the weight's bits select the partial products
    localparam int NARROW_W = ALONG_W ? W_W : IN_W;
    // Masked sums (MSUM): a product of a multi-bit input and a bipolar weight, or a 2-bit signed
    // weight (ternary), is a sum of masked inputs. Bipolar w (bit 1: +1, 0: -1):
    //   x*w = 2*(w ? x : 0) - x;  2-bit signed w = w0 - 2*w1:  x*w = (w0 ? x : 0) - 2*(w1 ? x : 0).
    // Each lane's tree adds the masked inputs (an AND per bit, never a negation); a second tree
    // adds the x (bipolar: one tree shared by the lanes) or the (w1 ? x : 0) (ternary: per lane),
    // and a registered stage after the trees combines the two sums. The shared negations -x of
    // the plain products were routed from one place to every lane (TFC's first layers, PE 16).
    localparam bit MSUM_BIP = !X_PER_PE && W_BIPOLAR && !IN_BIPOLAR;
    localparam bit MSUM_TER = !X_PER_PE && !IN_BIPOLAR && !W_BIPOLAR && !USE_MUL && W_SIGNED && W_W == 2 && IN_W > 2;
    localparam bit MSUM     = MSUM_BIP || MSUM_TER;
    localparam int M_W      = IN_W + (IN_SIGNED ? 0 : 1);  // a masked input as a signed term
    localparam bit SPLIT    = !IN_BIPOLAR && !W_BIPOLAR && !USE_MUL && !MSUM && NARROW_W > 2;
    localparam int K        = SPLIT ? NARROW_W : 1;  // tree terms per product
    // a product's width as a signed value: XNOR 0/1 in 2 bits; else the operands' widths, a
    // bipolar side counting as 2 bits and one more bit when both sides are unsigned
    localparam int P_RAW   = XNOR ? 2 : (IN_BIPOLAR ? 2 : IN_W) + (W_BIPOLAR ? 2 : W_W)
                                        + (!IN_SIGNED && !IN_BIPOLAR && !W_SIGNED && !W_BIPOLAR ? 1 : 0);
    localparam int P_W     = P_RAW < ACC_W ? P_RAW : ACC_W;
    localparam int T_W     = MSUM ? M_W : P_W;  // a tree term's width
    localparam int TAG_W   = 3 + NF_W;  // valid, first, last, fold

    // pipeline stages of the two trees (adder_tree's LATENCY), for the queue's depth
    function automatic int tree_latency(input int n, input int pre, input int lps);
        int levels, stages;
        levels = n > 1 ? $clog2(n) : 0;
        stages = levels == 0 ? 1 : 0;
        for (int k = 1; k <= levels; k++) begin
            if (k == levels || (k + pre) % lps == 0) stages = stages + 1;
        end
        tree_latency = stages;
    endfunction
    // adder levels per stage of the product tree: two, but one after multipliers, whose products
    // come from the DSP column (16 bits and more: two adder levels with that route did not fit
    // 150 MHz on ECP5)
    localparam int TREE_LPS = USE_MUL ? 1 : 2;
    // the tree's input to the dot product (the tree, and MSUM's combining stage)
    localparam int T_DOT   = (USE_MUL ? tree_latency(SIMD, 0, TREE_LPS) : tree_latency(SIMD * K, 1, TREE_LPS))
                             + (MSUM ? 1 : 0);
    localparam int T_MAC   = (USE_MUL ? 2 : 0) + T_DOT;
    // more than 3 thresholds (activations of 3 bits and more), or a memory in block RAM (THR_BRAM:
    // CNV-w1a1's Conv_5, 256 folds of one threshold, had the route from the block RAM's output
    // register into the compares as its critical path): the read gets a second register in the
    // fabric, beside the compares; 1 to 3 thresholds in LUTs have the one read register
    localparam bit THR_REG2 = NUM_T > 3 || THR_BRAM;
    // 1 to 3 thresholds in a LUT ROM of more than one fold (one fold's are constants), four lanes
    // or more: each lane compares with its own copy of the read's second register (g_thr_copies)
    localparam bit THR_COPIES = !THR_REG2 && !THR_SEARCH && NF > 1 && PE >= 4;
    localparam int T_THR   = THR_SEARCH ? 6 * $clog2(NUM_T + 1) : 2 + (THR_REG2 ? 1 : 0) + tree_latency(NUM_T, 0, 2);
    localparam int LATENCY = 1 + T_MAC + 1 + (NUM_T > 0 ? T_THR : 0) + 2;
    localparam int QDEPTH  = LATENCY + 4 + IN_DELAY;  // hw/credit_queue.sv: latency + 6, less the queue's own 2 counted in LATENCY

    // ---------------------------------------------------------------- input registers
    logic [XWORD_W-1:0] x1_reg;
    logic [WWORD_W-1:0] w1_reg;
    logic [TAG_W-1:0]   tag1_reg;
    always_ff @(posedge clk) begin
        x1_reg   <= in_x;
        w1_reg   <= in_w;
        tag1_reg <= {in_valid, in_first, in_last, in_fold};
        if (rst) tag1_reg[TAG_W-1] <= 1'b0;
    end

    // ---------------------------------------------------------------- products and dot products
    function automatic logic [P_W-1:0] product(input logic [IN_W-1:0] xv, input logic [W_W-1:0] wv);
        logic signed [P_W-1:0] xe, we, r;
        logic agree;
        agree = xv[0] ~^ wv[0];  // XNOR: the signs agree
        xe = IN_SIGNED ? P_W'($signed(xv)) : P_W'(xv);
        we = W_SIGNED ? P_W'($signed(wv)) : P_W'(wv);
        r = '0;
        if (XNOR) begin
            r = P_W'(agree);
        end else if (W_BIPOLAR) begin
            r = wv[0] ? xe : -xe;
        end else if (IN_BIPOLAR) begin
            r = xv[0] ? we : -we;
        end else if (USE_MUL) begin
            r = xe * we;
        end else if (ALONG_W) begin
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

    // partial product i of a SPLIT product: the wider operand shifted by i where bit i of the
    // narrower one is set, negated for a signed operand's sign bit
    function automatic logic [P_W-1:0] partial(input logic [IN_W-1:0] xv, input logic [W_W-1:0] wv,
                                               input int i);
        logic signed [P_W-1:0] base;
        logic bit_i, neg;
        if (ALONG_W) begin
            base  = IN_SIGNED ? P_W'($signed(xv)) : P_W'(xv);
            bit_i = wv[i];
            neg   = W_SIGNED && i == W_W - 1;
        end else begin
            base  = W_SIGNED ? P_W'($signed(wv)) : P_W'(wv);
            bit_i = xv[i];
            neg   = IN_SIGNED && i == IN_W - 1;
        end
        partial = !bit_i ? '0 : neg ? -(base <<< i) : (base <<< i);
    endfunction

    // the operands of the products (x1_reg / w1_reg, or with multipliers their second registers)
    // (with X_COPIES the lanes read their own copies of x1_reg, not x_op)
    // verilator lint_off UNUSEDSIGNAL
    logic [XWORD_W-1:0]       x_op;
    // verilator lint_on UNUSEDSIGNAL
    logic [WWORD_W-1:0]       w_op;

    // An MVAU's slice feeds every lane. With X_COPIES each lane reads its own copy of the input
    // register, which place and route can put beside the lane: from one register, each bit had to
    // reach lanes spread over the chip (TFC's first layer at FINN's folding, PE = 16 and SIMD = 49:
    // 2.7 to 4.8 ns of routing before the adder tree)
    localparam bit X_COPIES = !X_PER_PE && !USE_MUL && PE >= 4;
    logic [PE*XWORD_W-1:0] x_lanes;  // lane pe's slice at [pe*XWORD_W +: XWORD_W]
    for (genvar pe = 0; pe < PE; pe++) begin : g_x_lane
        if (X_COPIES) begin : g_copy
            logic [XWORD_W-1:0] x_copy;
            // keep: Yosys would otherwise merge the equal registers back into one
            (* keep *) always_ff @(posedge clk) x_copy <= in_x;
            assign x_lanes[pe*XWORD_W +: XWORD_W] = x_copy;
        end else begin : g_shared
            assign x_lanes[pe*XWORD_W +: XWORD_W] = x_op;
        end
    end

    // a masked input: x where the bit is set, else 0, as a signed term of M_W bits
    function automatic logic [M_W-1:0] masked(input logic [IN_W-1:0] xv, input logic bit_set);
        logic signed [M_W-1:0] xe;
        xe = IN_SIGNED ? M_W'($signed(xv)) : M_W'(xv);
        masked = bit_set ? xe : '0;
    endfunction

    logic [PE*SIMD*K*T_W-1:0] terms, tree_terms;
    logic [TAG_W-1:0]         tree_tag;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            for (int s = 0; s < SIMD; s++) begin
                for (int i = 0; i < K; i++) begin
                    terms[((pe*SIMD + s)*K + i)*T_W +: T_W] = MSUM
                        ? T_W'(masked(x_lanes[pe*XWORD_W + s*IN_W +: IN_W], w_op[(pe*SIMD + s)*W_W]))
                        : SPLIT
                        ? T_W'(partial(x_lanes[pe*XWORD_W + (X_PER_PE ? s*PE + pe : s)*IN_W +: IN_W],
                                       w_op[(pe*SIMD + s)*W_W +: W_W], i))
                        : T_W'(product(x_lanes[pe*XWORD_W + (X_PER_PE ? s*PE + pe : s)*IN_W +: IN_W],
                                       w_op[(pe*SIMD + s)*W_W +: W_W]));
                end
            end
        end
    end

    // with multipliers, the operands are registered once more (beside the DSPs) and the products
    // once (hw/pipe_stage.sv); every other product or partial product is the tree's level 0
    logic [TAG_W-1:0] op_tag;
    pipe_stage #(
        .DATA_W(XWORD_W + WWORD_W + TAG_W - 1), .STAGE(USE_MUL)
    ) u_operands (
        .clk(clk), .rst(rst), .d({x1_reg, w1_reg, tag1_reg[TAG_W-2:0]}), .d_valid(tag1_reg[TAG_W-1]),
        .q({x_op, w_op, op_tag[TAG_W-2:0]}), .q_valid(op_tag[TAG_W-1])
    );
    pipe_stage #(
        .DATA_W(PE*SIMD*K*T_W + TAG_W - 1), .STAGE(USE_MUL)
    ) u_products (
        .clk(clk), .rst(rst), .d({terms, op_tag[TAG_W-2:0]}), .d_valid(op_tag[TAG_W-1]),
        .q({tree_terms, tree_tag[TAG_W-2:0]}), .q_valid(tree_tag[TAG_W-1])
    );

    logic [PE*ACC_W-1:0] dot, tree_sum;
    logic [TAG_W-1:0]    dot_tag, tree_sum_tag;
    adder_tree #(
        .LANES(PE), .N(SIMD*K), .IN_W(T_W), .SIGNED(1'b1), .OUT_W(ACC_W), .LPS(TREE_LPS), .PRE(USE_MUL ? 0 : 1),
        .TAG_W(TAG_W)
    ) u_dot (
        .clk(clk), .rst(rst), .terms(tree_terms), .in_tag(tree_tag), .sum(tree_sum), .out_tag(tree_sum_tag)
    );

    if (MSUM) begin : g_msum
        // the second tree (MSUM above), as deep as the first, and the registered combination
        localparam int L2 = MSUM_BIP ? 1 : PE;
        logic [L2*SIMD*M_W-1:0] terms2;
        always_comb begin
            for (int l = 0; l < L2; l++) begin
                for (int s = 0; s < SIMD; s++) begin
                    terms2[(l*SIMD + s)*M_W +: M_W] = MSUM_BIP
                        ? masked(x_op[s*IN_W +: IN_W], 1'b1)
                        : masked(x_lanes[l*XWORD_W + s*IN_W +: IN_W], w_op[(l*SIMD + s)*W_W + 1]);
                end
            end
        end
        logic [L2*ACC_W-1:0] sum2;
        // verilator lint_off UNUSEDSIGNAL
        logic                unused_tag2;
        // verilator lint_on UNUSEDSIGNAL
        adder_tree #(
            .LANES(L2), .N(SIMD), .IN_W(M_W), .SIGNED(1'b1), .OUT_W(ACC_W), .LPS(TREE_LPS), .PRE(1), .TAG_W(1)
        ) u_second (
            .clk(clk), .rst(rst), .terms(terms2), .in_tag(1'b0), .sum(sum2), .out_tag(unused_tag2)
        );
        logic [PE*ACC_W-1:0] dot_reg;
        logic [TAG_W-1:0]    dot_tag_reg;
        always_ff @(posedge clk) begin
            for (int pe = 0; pe < PE; pe++) begin
                dot_reg[pe*ACC_W +: ACC_W] <= MSUM_BIP
                    ? (tree_sum[pe*ACC_W +: ACC_W] << 1) - sum2[0 +: ACC_W]
                    : tree_sum[pe*ACC_W +: ACC_W] - (sum2[pe*ACC_W +: ACC_W] << 1);
            end
            dot_tag_reg <= tree_sum_tag;
            if (rst) dot_tag_reg[TAG_W-1] <= 1'b0;
        end
        assign dot     = dot_reg;
        assign dot_tag = dot_tag_reg;
    end else begin : g_one_tree
        assign dot     = tree_sum;
        assign dot_tag = tree_sum_tag;
    end

    // ---------------------------------------------------------------- accumulate
    wire logic            dot_valid = dot_tag[TAG_W-1];
    // (with TAG_COPIES the lanes read their own copies of valid and first)
    // verilator lint_off UNUSEDSIGNAL
    wire logic            dot_first = dot_tag[TAG_W-2];
    // verilator lint_on UNUSEDSIGNAL
    wire logic            dot_last  = dot_tag[TAG_W-3];
    // (the fold addresses the accumulator memory and the thresholds: with neither, nothing reads it)
    // verilator lint_off UNUSEDSIGNAL
    wire logic [NF_W-1:0] dot_fold  = dot_tag[NF_W-1:0];
    // verilator lint_on UNUSEDSIGNAL

    // valid and first of the dot product, a register per lane from PE = 4 on: from one register
    // they reached every accumulator bit (the adder's select, the register's enable) across the
    // lanes, 4.7 ns of routing in TFC's first layer at FINN's folding (PE = 16). The copies are
    // the last stage of their own two-bit delay line beside the tree's tag (2 x (T_DOT - 1)
    // flip-flops more, where Yosys does not merge them with the tag's).
    localparam bit TAG_COPIES = PE >= 4;
    logic [PE-1:0] lane_valid, lane_first;
    if (TAG_COPIES) begin : g_tag_copies
        for (genvar i = 0; i < T_DOT; i++) begin : g_delay  // tree_tag's {valid, first} delayed i cycles
            logic [1:0] q;
            if (i == 0) begin : g_in
                assign q = tree_tag[TAG_W-1 -: 2];
            end else begin : g_reg
                always_ff @(posedge clk) begin
                    q <= g_delay[i-1].q;
                    if (rst) q[1] <= 1'b0;
                end
            end
        end
        for (genvar pe = 0; pe < PE; pe++) begin : g_lane
            logic [1:0] copy;
            // keep: Yosys would otherwise merge the equal registers back into one
            (* keep *) always_ff @(posedge clk) begin
                copy <= g_delay[T_DOT-1].q;
                if (rst) copy[1] <= 1'b0;
            end
            assign lane_valid[pe] = copy[1];
            assign lane_first[pe] = copy[0];
        end
    end else begin : g_tag_shared
        assign lane_valid = {PE{dot_valid}};
        assign lane_first = {PE{dot_first}};
    end

    logic [PE*ACC_W-1:0] acc_old, acc_sum, res_reg;
    logic                res_valid_reg;
    always_comb begin
        for (int pe = 0; pe < PE; pe++) begin
            acc_sum[pe*ACC_W +: ACC_W] = (lane_first[pe] ? ACC_W'(0) : acc_old[pe*ACC_W +: ACC_W]) + dot[pe*ACC_W +: ACC_W];
        end
    end

    if (ACC_MEM) begin : g_acc_mem
        // a fold's partial sums, read asynchronously (LUT RAM), a memory per lane; folds
        // interleave slice by slice, so a fold is written back NF >= 2 cycles before its next read
        for (genvar pe = 0; pe < PE; pe++) begin : g_lane_mem
            logic [ACC_W-1:0] acc_mem [NF];
            always_ff @(posedge clk) begin
                if (lane_valid[pe]) acc_mem[dot_fold] <= acc_sum[pe*ACC_W +: ACC_W];
            end
            assign acc_old[pe*ACC_W +: ACC_W] = acc_mem[dot_fold];
        end
    end else begin : g_acc_reg
        assign acc_old = res_reg;
    end

    always_ff @(posedge clk) begin
        for (int pe = 0; pe < PE; pe++) begin
            if (lane_valid[pe]) res_reg[pe*ACC_W +: ACC_W] <= acc_sum[pe*ACC_W +: ACC_W];
        end
        res_valid_reg <= dot_valid && dot_last;
        if (rst) res_valid_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- activation
    logic [PE*OUT_W-1:0] act;
    logic                act_valid;

    if (NUM_T > 0 && THR_SEARCH) begin : g_search
        // the accumulator's register and its fold: the search reads its first stage's memories at
        // that fold, a register (hw/threshold_search.sv: one comparison per lane and result bit)
        logic [NF_W-1:0] res_fold_reg;
        always_ff @(posedge clk) begin
            res_fold_reg <= dot_fold;
        end

        threshold_search #(
            .LANES(PE), .NUM_T(NUM_T), .NF(NF), .IN_W(ACC_W), .IN_SIGNED(1'b1), .IN_BIPOLAR(1'b0), .THR_W(ACC_W),
            .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .TAG_W(1), .PREFIX(THRESH_PREFIX)
        ) u_search (
            .clk(clk), .rst(rst), .value(res_reg), .fold(res_fold_reg), .in_tag(res_valid_reg),
            .count(act), .out_tag(act_valid)
        );
    end else if (NUM_T > 0) begin : g_thresholds
        localparam int TWORD_W = PE * NUM_T * ACC_W;

        // read with the fold's last accumulation, registered once more in the fabric; with
        // THR_REG2 a second time (hw/pipe_stage.sv): the first register becomes a block RAM's
        // output register (flows/implement/outreg.py), the second sits beside the comparators,
        // so the route from the RAM meets no logic
        logic [TWORD_W-1:0] thr_ram, thr_reg, thr_cmp;
        logic [PE*ACC_W-1:0] res2_reg, res_cmp;
        logic                v2_reg, v_cmp;
        if (THR_BRAM) begin : g_tmem_block
            (* rom_style = "block" *) logic [TWORD_W-1:0] tmem [NF];
            initial $readmemh(THRESH_FILE, tmem);
            always_ff @(posedge clk) thr_ram <= tmem[dot_fold];
        end else begin : g_tmem
            logic [TWORD_W-1:0] tmem [NF];
            initial $readmemh(THRESH_FILE, tmem);
            always_ff @(posedge clk) thr_ram <= tmem[dot_fold];
        end
        always_ff @(posedge clk) begin
            res2_reg <= res_reg;
            v2_reg   <= res_valid_reg;
            if (rst) v2_reg <= 1'b0;
        end
        if (THR_COPIES) begin : g_thr_copies
            // keep: a LUT ROM's columns repeat across lanes and folds, and Yosys merges the equal
            // registers: TFC-w1a1's first layer (PE 16) kept 14 of 260, each steering 18 to 44
            // compare chains across the chip (a 4.4 ns route, its critical path)
            (* keep *) always_ff @(posedge clk) thr_reg <= thr_ram;
        end else begin : g_thr_shared
            always_ff @(posedge clk) thr_reg <= thr_ram;
        end
        pipe_stage #(
            .DATA_W(TWORD_W + PE*ACC_W), .STAGE(THR_REG2)
        ) u_thr_reg2 (
            .clk(clk), .rst(rst), .d({thr_reg, res2_reg}), .d_valid(v2_reg),
            .q({thr_cmp, res_cmp}), .q_valid(v_cmp)
        );

        // one registered compare per threshold, counted by a tree (hw/threshold_count.sv)
        threshold_count #(
            .LANES(PE), .NUM_T(NUM_T), .IN_W(ACC_W), .IN_SIGNED(1'b1), .IN_BIPOLAR(1'b0), .THR_W(ACC_W),
            .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .TAG_W(1)
        ) u_thresholds (
            .clk(clk), .rst(rst), .value(res_cmp), .thresholds(thr_cmp), .in_tag(v_cmp),
            .count(act), .out_tag(act_valid)
        );
    end else begin : g_no_thresholds
        assign act       = res_reg;
        assign act_valid = res_valid_reg;
    end

    // ---------------------------------------------------------------- queue and credits
    credit_queue #(
        .DATA_W(PE*OUT_W), .DEPTH(QDEPTH)
    ) u_queue (
        .clk(clk), .rst(rst), .reserve(reserve), .space(space),
        .s_axis_tdata(act), .s_axis_tvalid(act_valid),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
