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
//             at element e, MUL_W / OFF_W-bit two's complement; read one beat ahead.
// Latency   : 1 cycle from the last input beat of a frame to the output beat.
// Throughput: one input beat per cycle, so NUM/PE cycles per frame.
// Ready     : s_axis_tready is the registered ready of the output slice (skid_buffer); no
//             combinational path from m_axis_tready.
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

    localparam logic [OUT_W-1:0] LAST_BASE = OUT_W'(NUM - PE);

    logic [OUT_W-1:0]  base_reg;       // index of element 0 of the current beat
    logic [CMP_W-1:0]  best_val_reg;   // best value of the frame's earlier beats
    logic [OUT_W-1:0]  best_idx_reg;
    logic              slice_ready;
    logic [PE*CMP_W-1:0] vals;         // this beat's values as compared

    wire in_fire = s_axis_tvalid && slice_ready;
    wire last    = base_reg == LAST_BASE;

    if (MAPPED) begin : g_map
        localparam int CF     = NUM / PE;
        localparam int FOLD_W = CF > 1 ? $clog2(CF) : 1;
        localparam int MW     = HAS_MUL ? MUL_W : 1;
        localparam int OW     = HAS_OFFSET ? OFF_W : 1;
        localparam logic [FOLD_W-1:0] LAST_FOLD = FOLD_W'(CF - 1);

        logic [PE*MW-1:0]  mul_q;      // the constants of the current beat's classes
        logic [PE*OW-1:0]  off_q;
        logic [FOLD_W-1:0] fold_reg, fold_next;

        // synchronous reads addressed by the next fold, as hw/thresholding.sv reads its thresholds
        if (HAS_MUL) begin : g_mul_rom
            logic [PE*MW-1:0] mul_mem [CF];
            initial $readmemh(MUL_FILE, mul_mem);
            always_ff @(posedge clk) mul_q <= mul_mem[fold_next];
        end else begin : g_no_mul
            assign mul_q = '0;
        end
        if (HAS_OFFSET) begin : g_off_rom
            logic [PE*OW-1:0] off_mem [CF];
            initial $readmemh(OFFSET_FILE, off_mem);
            always_ff @(posedge clk) off_q <= off_mem[fold_next];
        end else begin : g_no_off
            assign off_q = '0;
        end

        always_comb begin
            fold_next = fold_reg;
            if (in_fire) fold_next = (fold_reg == LAST_FOLD) ? '0 : fold_reg + 1'b1;
            if (rst) fold_next = '0;
        end

        always_ff @(posedge clk) fold_reg <= fold_next;

        always_comb begin
            for (int e = 0; e < PE; e++) begin
                logic signed [ELEM_W:0]    x;  // sign- or zero-extended input
                // exact product; bits above VAL_W are unused where the map's values are narrower
                /* verilator lint_off UNUSEDSIGNAL */
                logic signed [ELEM_W+MW:0] p;
                /* verilator lint_on UNUSEDSIGNAL */
                logic signed [CMP_W-1:0]   v;
                x = SIGNED ? $signed({s_axis_tdata[e*ELEM_W+ELEM_W-1], s_axis_tdata[e*ELEM_W +: ELEM_W]})
                           : $signed({1'b0, s_axis_tdata[e*ELEM_W +: ELEM_W]});
                if (HAS_MUL) p = x * $signed(mul_q[e*MW +: MW]);
                else p = (ELEM_W+MW+1)'(x);
                v = CMP_W'(p) <<< SHIFT;
                if (HAS_OFFSET) v = v + CMP_W'($signed(off_q[e*OW +: OW]));
                vals[e*CMP_W +: CMP_W] = v;
            end
        end
    end else begin : g_plain
        assign vals = s_axis_tdata;
    end

    // best of this beat, then against the earlier beats; only a strictly larger value replaces
    // the best so far, so ties keep the lowest index
    logic [CMP_W-1:0]  beat_val, new_val;
    logic [OUT_W-1:0]  beat_idx, new_idx;

    function automatic logic greater(input logic [CMP_W-1:0] a, input logic [CMP_W-1:0] b);
        greater = CMP_SIGNED ? ($signed(a) > $signed(b)) : (a > b);
    endfunction

    always_comb begin
        beat_val = vals[CMP_W-1:0];
        beat_idx = base_reg;
        for (int e = 1; e < PE; e++) begin
            if (greater(vals[e*CMP_W +: CMP_W], beat_val)) begin
                beat_val = vals[e*CMP_W +: CMP_W];
                beat_idx = base_reg + OUT_W'(e);
            end
        end
        new_val = beat_val;
        new_idx = beat_idx;
        if (base_reg != '0 && !greater(beat_val, best_val_reg)) begin
            new_val = best_val_reg;
            new_idx = best_idx_reg;
        end
    end

    always_ff @(posedge clk) begin
        if (in_fire) begin
            best_val_reg <= new_val;
            best_idx_reg <= new_idx;
            base_reg     <= last ? '0 : base_reg + OUT_W'(PE);
        end
        if (rst) base_reg <= '0;
    end

    assign s_axis_tready = slice_ready;

    skid_buffer #(
        .DATA_W(OUT_W)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(new_idx),
        .s_axis_tvalid(s_axis_tvalid && last),
        .s_axis_tready(slice_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
