// label_select: index of the largest of NUM values (top-1), ties to the lowest index.
//
// Function  : a frame is NUM values, PE per beat (value i of the frame is element i mod PE of
//             beat i / PE, element e at bits [e*ELEM_W +: ELEM_W]); the output is one beat per
//             frame holding the index of the largest value, the lowest such index on ties
//             (numpy.argmax), unsigned in OUT_W bits. Values are two's complement if SIGNED.
//             With a per-class map (HAS_MUL, HAS_OFFSET or SHIFT > 0) the values compared are
//             v_i = ((HAS_MUL ? M_i * x_i : x_i) << SHIFT) + (HAS_OFFSET ? N_i : 0), signed in
//             VAL_W bits (the caller sizes VAL_W so that v never wraps): per-class scales and
//             offsets of the logits, made integers by qnnflow.flows.passes.label_map. M_i and N_i come
//             from MUL_FILE and OFFSET_FILE ($readmemh), laid out like thresholds
//             (qnnflow.flows.codegen.memfiles.label_map_words): NUM/PE words, word f holds class f*PE+e
//             at element e, MUL_W / OFF_W-bit two's complement; read with the beat.
// Structure : a free-running pipeline: the beat registered; with a map, the constants read at the
//             beat's fold (a register) and registered again with it, the product registered
//             (HAS_MUL), the offset's sum registered (HAS_OFFSET); the beat's best by a tree of
//             pairwise (value, index) compares over its PE values, LEVELS = clog2(PE) levels, the
//             higher index winning a pair only when strictly greater, a register after every
//             level (two levels of wide compares do not fit 150 MHz on ECP5); then the best so
//             far of the frame, over items of two beats (with an odd NUM/PE the frame's first beat
//             alone), so that its loop has two cycles: the item's halves registered (1), the
//             item's best (1), compared with the best so far (1), which is then updated (1); only a
//             strictly greater value replaces it, a frame's first item unconditionally; a frame's
//             result goes into an output queue (hw/credit_queue.sv).
// Latency   : from the last input beat of a frame to its output beat (queue empty):
//             LATENCY = 1 (input register) + [HAS_MUL or HAS_OFFSET: 1 (the constants' second
//             register)] + [HAS_MUL: 1 (product)] + [HAS_OFFSET: 1 (offset sum)] + T_TREE + 4
//             (items and best so far) + 2 (queue), T_TREE = clog2(PE) (PE = 1: 0; 2: 1; 3..4: 2;
//             5..8: 3; 9..16: 4). Without a map: 7 + clog2(PE); e.g. NUM = PE = 10 with multipliers
//             and offsets: 7 + 3 + 4 = 14. qnnflow.flows.compile.latency uses the same formula.
// Throughput: one input beat per cycle, so NUM/PE cycles per frame, frames back to back (also
//             PE = NUM, a frame per cycle) while the output is taken: the queue holds
//             LATENCY + 4 results, the credits' round trip (hw/credit_queue.sv).
// Ready     : s_axis_tready = !last || space: a frame's last beat is taken only while the queue
//             has a credit for its result, the other beats always. Both are registers: no
//             combinational path from s_axis_tvalid or m_axis_tready. m_axis_* are registers.
//
// Parameters:
//   NUM         values per frame (>= 1)
//   PE          values per beat; must divide NUM
//   ELEM_W      value width in bits
//   SIGNED      1: two's complement values; 0: unsigned
//   OUT_W       index width; 2**OUT_W must be at least NUM
//   HAS_MUL     1: multiply value i by M_i (MUL_FILE)
//   HAS_OFFSET  1: add N_i to value i (OFFSET_FILE)
//   MUL_W       width of M_i (two's complement), with HAS_MUL
//   OFF_W       width of N_i (two's complement), with HAS_OFFSET
//   SHIFT       left shift of the (multiplied) value before the offset (>= 0)
//   VAL_W       width of v (two's complement) with a map; unused without one (1..64)
//   MUL_FILE    $readmemh file of the multipliers
//   OFFSET_FILE $readmemh file of the offsets

`resetall
`timescale 1ns / 1ps
`default_nettype none

module label_select #(
    parameter int NUM    = 10,
    parameter int PE     = 1,
    parameter int ELEM_W = 8,
    parameter bit SIGNED = 1'b1,
    parameter int OUT_W  = 4,
    parameter bit HAS_MUL     = 1'b0,
    parameter bit HAS_OFFSET  = 1'b0,
    parameter int MUL_W       = 2,
    parameter int OFF_W       = 2,
    parameter int SHIFT       = 0,
    parameter int VAL_W       = 2,
    parameter     MUL_FILE    = "",
    parameter     OFFSET_FILE = ""
) (
    input  wire logic                 clk,
    input  wire logic                 rst,

    input  wire logic [PE*ELEM_W-1:0] s_axis_tdata,
    input  wire logic                 s_axis_tvalid,
    output wire logic                 s_axis_tready,

    output wire logic [OUT_W-1:0]     m_axis_tdata,
    output wire logic                 m_axis_tvalid,
    input  wire logic                 m_axis_tready
);

    if (PE < 1 || NUM % PE != 0) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d) must divide NUM (%0d)", PE, NUM);
    end
    if (OUT_W < 1 || (1 << OUT_W) < NUM) begin : g_bad_out
        $fatal(1, "%m: OUT_W (%0d) bits cannot index NUM (%0d) values", OUT_W, NUM);
    end

    // the values compared: the inputs themselves, or the per-class map of them
    localparam bit MAPPED     = HAS_MUL || HAS_OFFSET || SHIFT != 0;
    localparam bit HAS_ROM    = HAS_MUL || HAS_OFFSET;
    localparam int CMP_W      = MAPPED ? VAL_W : ELEM_W;
    localparam bit CMP_SIGNED = MAPPED ? 1'b1 : SIGNED;

    if (MAPPED && (SHIFT < 0 || VAL_W > 64 || VAL_W < ELEM_W + SHIFT + (SIGNED ? 0 : 1))) begin : g_bad_val
        $fatal(1, "%m: VAL_W (%0d) must hold an ELEM_W (%0d)-bit value shifted by SHIFT (%0d) and be at most 64",
               VAL_W, ELEM_W, SHIFT);
    end
    if (HAS_MUL && (MUL_W < 1 || MUL_W > VAL_W)) begin : g_bad_mul
        $fatal(1, "%m: MUL_W (%0d) must be in 1..VAL_W (%0d)", MUL_W, VAL_W);
    end
    if (HAS_OFFSET && (OFF_W < 1 || OFF_W > VAL_W)) begin : g_bad_off
        $fatal(1, "%m: OFF_W (%0d) must be in 1..VAL_W (%0d)", OFF_W, VAL_W);
    end

    localparam int CF     = NUM / PE;
    localparam int FOLD_W = CF > 1 ? $clog2(CF) : 1;
    localparam int LEVELS = PE > 1 ? $clog2(PE) : 0;  // levels of the compare tree
    localparam int IW     = PE > 1 ? $clog2(PE) : 1;  // an element's index within its beat

    // a register after every level of the compare tree: two levels of wide compares and
    // multiplexers do not fit a 150 MHz cycle on ECP5
    localparam int T_MAP   = (HAS_ROM ? 1 : 0) + (HAS_MUL ? 1 : 0) + (HAS_OFFSET ? 1 : 0);
    localparam int LATENCY = 1 + T_MAP + LEVELS + 4 + 2;
    localparam int QDEPTH  = LATENCY + 4;  // hw/credit_queue.sv: (LATENCY - 2 from `reserve` to s_axis) + 6

    function automatic logic greater(input logic [CMP_W-1:0] a, input logic [CMP_W-1:0] b);
        greater = CMP_SIGNED ? ($signed(a) > $signed(b)) : (a > b);
    endfunction

    // the same compare as two carry chains of half the width side by side, joined by a LUT, for
    // every compare with a select or a loop after it in the same cycle (the tree, the items, the
    // best so far): one chain of 20 bits and more does not fit 150 MHz on ECP5 (nextpnr breaks it
    // into pieces with routing between them)
    localparam int SPLIT_W = 12;  // narrower compares keep one chain
    localparam int LO_W    = CMP_W > SPLIT_W ? CMP_W / 2 : 1;
    function automatic logic greater_split(input logic [CMP_W-1:0] a, input logic [CMP_W-1:0] b);
        if (CMP_W <= SPLIT_W) begin
            greater_split = greater(a, b);
        end else begin
            logic [CMP_W-LO_W-1:0] a_hi, b_hi;
            logic [LO_W-1:0]       a_lo, b_lo;
            {a_hi, a_lo} = a;
            {b_hi, b_lo} = b;
            greater_split = (CMP_SIGNED ? ($signed(a_hi) > $signed(b_hi)) : (a_hi > b_hi))
                            || (a_hi == b_hi && a_lo > b_lo);
        end
    endfunction

    // ---------------------------------------------------------------- input
    // a frame's last beat is taken while the output queue has a credit for its result; the
    // other beats always
    logic              space;
    logic [FOLD_W-1:0] fold_reg;  // beat of the frame on s_axis
    logic              last_reg;  // fold_reg == CF-1
    assign s_axis_tready = space || !last_reg;
    wire logic in_fire = s_axis_tvalid && s_axis_tready;

    always_ff @(posedge clk) begin
        if (in_fire) begin
            fold_reg <= last_reg ? '0 : fold_reg + 1'b1;
            last_reg <= last_reg ? CF == 1 : fold_reg == FOLD_W'(CF - 2);
        end
        if (rst) begin
            fold_reg <= '0;
            last_reg <= CF == 1;
        end
    end

    // stage 1: the beat
    logic [PE*ELEM_W-1:0] x1_reg;
    logic                 v1_reg;
    always_ff @(posedge clk) begin
        x1_reg <= s_axis_tdata;
        v1_reg <= in_fire;
        if (rst) v1_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- the per-class map
    logic [PE*CMP_W-1:0] vals;  // the beat's values as compared
    logic                vals_valid;

    if (MAPPED) begin : g_map
        localparam int MW = HAS_MUL ? MUL_W : 1;
        localparam int OW = HAS_OFFSET ? OFF_W : 1;

        logic [PE*ELEM_W-1:0] x_m;    // the beat and its classes' constants, side by side
        logic                 v_m;
        logic [PE*MW-1:0]     mul_m;
        logic [PE*OW-1:0]     off_m;

        if (HAS_ROM) begin : g_rom
            // the constants read with the beat (at fold_reg, a register), then registered again
            // with it (a block RAM's output register can take the second one), as
            // hw/thresholding.sv reads its thresholds
            logic [PE*MW-1:0]     mul_ram;
            logic [PE*OW-1:0]     off_ram;
            if (HAS_MUL) begin : g_mul_rom
                logic [PE*MW-1:0] mul_mem [CF];
                initial $readmemh(MUL_FILE, mul_mem);
                always_ff @(posedge clk) mul_ram <= mul_mem[fold_reg];
            end else begin : g_no_mul
                assign mul_ram = '0;
            end
            if (HAS_OFFSET) begin : g_off_rom
                logic [PE*OW-1:0] off_mem [CF];
                initial $readmemh(OFFSET_FILE, off_mem);
                always_ff @(posedge clk) off_ram <= off_mem[fold_reg];
            end else begin : g_no_off
                assign off_ram = '0;
            end
            pipe_stage #(
                .DATA_W(PE*(ELEM_W + MW + OW)), .STAGE(1'b1)
            ) u_constants (
                .clk(clk), .rst(rst), .d({x1_reg, mul_ram, off_ram}), .d_valid(v1_reg),
                .q({x_m, mul_m, off_m}), .q_valid(v_m)
            );
        end else begin : g_shift_only
            assign x_m   = x1_reg;
            assign v_m   = v1_reg;
            assign mul_m = '0;
            assign off_m = '0;
        end

        // the (multiplied and) shifted values; the shift is wiring
        logic [PE*CMP_W-1:0] scaled;
        always_comb begin
            for (int e = 0; e < PE; e++) begin
                logic signed [ELEM_W:0]    x;  // sign- or zero-extended input
                // exact product; bits above VAL_W are unused where the map's values are narrower
                /* verilator lint_off UNUSEDSIGNAL */
                logic signed [ELEM_W+MW:0] p;
                /* verilator lint_on UNUSEDSIGNAL */
                x = SIGNED ? $signed({x_m[e*ELEM_W+ELEM_W-1], x_m[e*ELEM_W +: ELEM_W]})
                           : $signed({1'b0, x_m[e*ELEM_W +: ELEM_W]});
                if (HAS_MUL) p = x * $signed(mul_m[e*MW +: MW]);
                else p = (ELEM_W+MW+1)'(x);
                scaled[e*CMP_W +: CMP_W] = CMP_W'(p) <<< SHIFT;
            end
        end

        // the product registered (hw/pipe_stage.sv), with HAS_MUL
        logic [PE*CMP_W-1:0] prod;
        logic [PE*OW-1:0]    off_p;
        logic                v_p;
        pipe_stage #(
            .DATA_W(PE*(CMP_W + OW)), .STAGE(HAS_MUL)
        ) u_product (
            .clk(clk), .rst(rst), .d({scaled, off_m}), .d_valid(v_m), .q({prod, off_p}), .q_valid(v_p)
        );

        // the offset added, registered
        if (HAS_OFFSET) begin : g_sum_reg
            logic [PE*CMP_W-1:0] sum_reg;
            logic                v4_reg;
            always_ff @(posedge clk) begin
                for (int e = 0; e < PE; e++) begin
                    sum_reg[e*CMP_W +: CMP_W] <= prod[e*CMP_W +: CMP_W] + CMP_W'($signed(off_p[e*OW +: OW]));
                end
                v4_reg <= v_p;
                if (rst) v4_reg <= 1'b0;
            end
            assign vals       = sum_reg;
            assign vals_valid = v4_reg;
        end else begin : g_no_sum
            // (no offsets: off_p is the constant 0)
            /* verilator lint_off UNUSEDSIGNAL */
            wire logic [PE*OW-1:0] unused_off = off_p;
            /* verilator lint_on UNUSEDSIGNAL */
            assign vals       = prod;
            assign vals_valid = v_p;
        end
    end else begin : g_plain
        assign vals       = x1_reg;
        assign vals_valid = v1_reg;
    end

    // ---------------------------------------------------------------- the beat's best
    // a tree of pairwise (value, index) compares; in a pair the higher-index side wins only when
    // strictly greater, so ties keep the lowest index. Level k (1..LEVELS) holds the winners of
    // 2**k elements, registered.
    for (genvar k = 0; k <= LEVELS; k++) begin : g_level
        localparam int CNT = (PE + (1 << k) - 1) >> k;

        logic [CNT*CMP_W-1:0] val;
        logic [CNT*IW-1:0]    idx;
        logic                 valid;

        if (k == 0) begin : g_values
            assign val   = vals;
            assign valid = vals_valid;
            for (genvar i = 0; i < PE; i++) begin : g_idx
                assign idx[i*IW +: IW] = IW'(i);
            end
        end else begin : g_compare
            localparam int PCNT = (PE + (1 << (k - 1)) - 1) >> (k - 1);  // the level below
            logic [CNT*CMP_W-1:0] win_val;
            logic [CNT*IW-1:0]    win_idx;
            for (genvar i = 0; i < CNT; i++) begin : g_node
                wire logic [CMP_W-1:0] a_val = g_level[k-1].val[2*i*CMP_W +: CMP_W];
                wire logic [IW-1:0]    a_idx = g_level[k-1].idx[2*i*IW +: IW];
                if (2 * i + 1 < PCNT) begin : g_pair
                    wire logic [CMP_W-1:0] b_val  = g_level[k-1].val[(2*i+1)*CMP_W +: CMP_W];
                    wire logic [IW-1:0]    b_idx  = g_level[k-1].idx[(2*i+1)*IW +: IW];
                    wire logic             take_b = greater_split(b_val, a_val);
                    assign win_val[i*CMP_W +: CMP_W] = take_b ? b_val : a_val;
                    assign win_idx[i*IW +: IW]       = take_b ? b_idx : a_idx;
                end else begin : g_odd
                    assign win_val[i*CMP_W +: CMP_W] = a_val;
                    assign win_idx[i*IW +: IW]       = a_idx;
                end
            end
            always_ff @(posedge clk) begin
                val   <= win_val;
                idx   <= win_idx;
                valid <= g_level[k-1].valid;
                if (rst) valid <= 1'b0;
            end
        end
    end

    // ---------------------------------------------------------------- the frame's best
    // The beats of a frame are taken as items: pairs of beats, and with an odd number of beats
    // per frame (CF) the first beat alone, so that every item after a frame's first is two beats
    // and thus at least two cycles after the one before. The best so far can then be a loop of two
    // registered stages (compare, then select) instead of one. In a pair, and against the best so
    // far, the later values win only when strictly greater (ties keep the lowest index); a frame's
    // first item replaces the best so far unconditionally.
    wire logic [CMP_W-1:0] beat_val   = g_level[LEVELS].val;
    wire logic [IW-1:0]    beat_idx   = g_level[LEVELS].idx;
    wire logic             beat_valid = g_level[LEVELS].valid;

    localparam bit ODD_CF = CF % 2 == 1;

    logic [OUT_W-1:0]  base_reg;  // index of element 0 of the beat at the tree's output
    logic [FOLD_W-1:0] pos_reg;   // that beat's place in its frame
    wire logic last_beat  = pos_reg == FOLD_W'(CF - 1);
    wire logic item_ends  = pos_reg[0] == !ODD_CF;              // the beat completes an item
    wire logic first_item = pos_reg == (ODD_CF ? '0 : FOLD_W'(1));

    always_ff @(posedge clk) begin
        if (beat_valid) begin
            base_reg <= last_beat ? '0 : base_reg + OUT_W'(PE);
            pos_reg  <= last_beat ? '0 : pos_reg + 1'b1;
        end
        if (rst) begin
            base_reg <= '0;
            pos_reg  <= '0;
        end
    end

    // stage A: the item's earlier half (held from the beat before) and its later half, and
    // their compare (both are registers here, so stage B is a select by a register: the compare
    // and the select of 24-bit values in one cycle were 7.7 ns on ECP5)
    logic [CMP_W-1:0] h_val, a_val, b_val;
    logic [OUT_W-1:0] h_idx, a_idx, b_idx;
    logic             a_pair, a_first, a_last, a_valid, b_wins;
    always_ff @(posedge clk) begin
        b_wins  <= greater_split(beat_val, h_val);
        if (beat_valid && !item_ends) begin
            h_val <= beat_val;
            h_idx <= base_reg + OUT_W'(beat_idx);
        end
        a_val   <= h_val;
        a_idx   <= h_idx;
        b_val   <= beat_val;
        b_idx   <= base_reg + OUT_W'(beat_idx);
        a_pair  <= !(ODD_CF && pos_reg == '0);
        a_first <= first_item;
        a_last  <= last_beat;
        a_valid <= beat_valid && item_ends;
        if (rst) a_valid <= 1'b0;
    end

    // stage B: the item's best
    logic [CMP_W-1:0] p_val;
    logic [OUT_W-1:0] p_idx;
    logic             p_first, p_last, p_valid;
    always_ff @(posedge clk) begin
        if (!a_pair || b_wins) begin
            p_val <= b_val;
            p_idx <= b_idx;
        end else begin
            p_val <= a_val;
            p_idx <= a_idx;
        end
        p_first <= a_first;
        p_last  <= a_last;
        p_valid <= a_valid;
        if (rst) p_valid <= 1'b0;
    end

    // stage C: the item against the best so far (final: the previous item of the same frame is
    // at least two cycles ahead, so stage D has taken it)
    logic [CMP_W-1:0] best_val_reg;  // best value of the frame so far
    logic [OUT_W-1:0] best_so_far_idx;
    logic [CMP_W-1:0] c_val;
    logic [OUT_W-1:0] c_idx;
    logic             c_take, c_last, c_valid;
    always_ff @(posedge clk) begin
        c_take  <= p_first || greater_split(p_val, best_val_reg);
        c_val   <= p_val;
        c_idx   <= p_idx;
        c_last  <= p_last;
        c_valid <= p_valid;
        if (rst) c_valid <= 1'b0;
    end

    // stage D: the best so far updated; a frame's last item gives the result
    logic [OUT_W-1:0] best_idx_reg;  // a frame's result
    logic             res_valid_reg;
    always_ff @(posedge clk) begin
        if (c_valid && c_take) begin
            best_val_reg    <= c_val;
            best_so_far_idx <= c_idx;
        end
        best_idx_reg  <= c_take ? c_idx : best_so_far_idx;
        res_valid_reg <= c_valid && c_last;
        if (rst) res_valid_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- output queue and credits
    credit_queue #(
        .DATA_W(OUT_W), .DEPTH(QDEPTH)
    ) u_out (
        .clk(clk), .rst(rst), .reserve(in_fire && last_reg), .space(space),
        .s_axis_tdata(best_idx_reg), .s_axis_tvalid(res_valid_reg),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
