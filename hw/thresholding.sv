// thresholding: multi-threshold activation, PE channels per beat.
//
// Function  : for each element x of channel c, out = (number of thresholds t of channel c with
//             t <= x) + OUT_OFFSET, in OUT_W bits (two's complement when OUT_OFFSET < 0).
//             x is an unsigned, a two's complement or (IN_BIPOLAR) a bipolar value, -1 or +1.
//             The stream is channels-last: beat j carries channels (j mod CF)*PE .. +PE-1,
//             CF = CH/PE, element e at bits [e*IN_W +: IN_W].
//             Thresholds come from THRESH_FILE ($readmemh), laid out by
//             qnnflow.flows.codegen.memfiles.threshold_words: CF words, word f holds channel f*PE+e's
//             threshold t at element e*NUM_T + t, THR_W-bit two's complement.
// Latency   : 1 cycle.
// Throughput: one beat per cycle.
// Ready     : s_axis_tready is the registered ready of the output slice (skid_buffer); no
//             combinational path from m_axis_tready.
// Structure : the comparison of one element with its thresholds is hw/threshold_count.sv (as in
//             the threshold stage of hw/mvau.sv and hw/vvau.sv).
//
// Parameters:
//   CH          channels (the length of the fastest-varying axis)
//   PE          channels per beat; must divide CH
//   IN_W        input element width
//   IN_SIGNED   1: inputs are two's complement; 0: unsigned
//   IN_BIPOLAR  1: inputs are bipolar {-1, +1}, one bit (IN_W = 1), 0 meaning -1, as a BIPOLAR
//               stream carries them (the thresholds compare with -1 / +1, not with the code)
//   NUM_T       thresholds per channel (>= 1)
//   THR_W       threshold width (two's complement)
//   OUT_W       output element width
//   OUT_OFFSET  signed offset added to the count
//   THRESH_FILE $readmemh file with the thresholds

`resetall
`timescale 1ns / 1ps
`default_nettype none

module thresholding #(
    parameter int CH          = 4,
    parameter int PE          = 2,
    parameter int IN_W        = 8,
    parameter bit IN_SIGNED   = 1'b0,
    parameter bit IN_BIPOLAR  = 1'b0,
    parameter int NUM_T       = 3,
    parameter int THR_W       = 9,
    parameter int OUT_W       = 2,
    parameter int OUT_OFFSET  = 0,
    parameter     THRESH_FILE = "thresholds.mem"
) (
    input  wire logic                clk,
    input  wire logic                rst,

    input  wire logic [PE*IN_W-1:0]  s_axis_tdata,
    input  wire logic                s_axis_tvalid,
    output wire logic                s_axis_tready,

    output wire logic [PE*OUT_W-1:0] m_axis_tdata,
    output wire logic                m_axis_tvalid,
    input  wire logic                m_axis_tready
);

    if (PE < 1 || CH % PE != 0) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d) must divide CH (%0d)", PE, CH);
    end
    // (NUM_T, IN_BIPOLAR and the widths are checked by threshold_count)

    localparam int CF     = CH / PE;
    localparam int FOLD_W = CF > 1 ? $clog2(CF) : 1;
    localparam int WORD_W = PE * NUM_T * THR_W;
    localparam logic [FOLD_W-1:0] LAST_FOLD = FOLD_W'(CF - 1);

    logic [WORD_W-1:0] thr_mem [CF];
    initial $readmemh(THRESH_FILE, thr_mem);

    logic [FOLD_W-1:0] fold_reg;
    logic [FOLD_W-1:0] fold_next;
    logic [WORD_W-1:0] thr_q;  // thr_mem[fold_reg], read one cycle ahead
    logic              slice_ready;

    wire in_fire = s_axis_tvalid && slice_ready;
    assign s_axis_tready = slice_ready;

    always_comb begin
        fold_next = fold_reg;
        if (in_fire) fold_next = (fold_reg == LAST_FOLD) ? '0 : fold_reg + 1'b1;
        if (rst) fold_next = '0;
    end

    // synchronous read addressed by the next fold: block RAM friendly, no extra latency
    always_ff @(posedge clk) begin
        fold_reg <= fold_next;
        thr_q    <= thr_mem[fold_next];
    end

    logic [PE*OUT_W-1:0] act;

    for (genvar e = 0; e < PE; e++) begin : g_elem
        threshold_count #(
            .NUM_T(NUM_T), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR), .THR_W(THR_W),
            .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET)
        ) u_count (
            .value(s_axis_tdata[e*IN_W +: IN_W]),
            .thresholds(thr_q[e*NUM_T*THR_W +: NUM_T*THR_W]),
            .count(act[e*OUT_W +: OUT_W])
        );
    end

    skid_buffer #(
        .DATA_W(PE*OUT_W)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(act),
        .s_axis_tvalid(s_axis_tvalid),
        .s_axis_tready(slice_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
