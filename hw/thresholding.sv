// thresholding: multi-threshold activation, PE channels per beat.
//
// Function  : for each element x of channel c, out = (number of thresholds t of channel c with
//             t <= x) + OUT_OFFSET, in OUT_W bits (two's complement when OUT_OFFSET < 0).
//             x is an unsigned, a two's complement or (IN_BIPOLAR) a bipolar value, -1 or +1.
//             The stream is channels-last: beat j carries channels (j mod CF)*PE .. +PE-1,
//             CF = CH/PE, element e at bits [e*IN_W +: IN_W].
//             Thresholds come from THRESH_FILE ($readmemh), laid out by
//             qnnflow.flows.codegen.memfiles.threshold_words: CF words, word f holds channel f*PE+e's
//             threshold t at element e*NUM_T + t, THR_W-bit two's complement. With THR_SEARCH
//             (each channel's thresholds non-decreasing) they come from hw/threshold_search.sv's
//             files instead, THRESH_PREFIX_s<k>_l<e>.mem (memfiles.threshold_search_words, NF = CF).
// Latency   : 2 + hw/threshold_count.sv's latency + 2 (the output queue) cycles: 6 for up to 4
//             thresholds, 7 for 5..16, 8 for 17..64, 9 for 65..255. With THR_SEARCH: 1 +
//             hw/threshold_search.sv's 6 * clog2(NUM_T + 1) + 2: 33 for 16..31 thresholds, 39 for
//             32..63, 45 for 64..127, 51 for 128..255.
// Throughput: one beat per cycle (the output queue gives credits for the whole latency).
// Ready     : s_axis_tready is a register: the output queue's credit (hw/credit_queue.sv); no
//             combinational path from m_axis_tready.
// Structure : the thresholds' read, registered twice; the comparisons and their count are
//             hw/threshold_count.sv (as in the threshold stage of hw/mac_pipeline.sv). With
//             THR_SEARCH: the beat and its fold registered, then hw/threshold_search.sv (a binary
//             search, one comparison per lane and result bit, each stage its own memories).
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
//   THRESH_FILE $readmemh file with the thresholds (unused with THR_SEARCH)
//   THR_SEARCH  1: hw/threshold_search.sv (thresholds must be non-decreasing per channel);
//               0: hw/threshold_count.sv
//   THRESH_PREFIX  with THR_SEARCH, the beginning of the search's memory files

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
    parameter     THRESH_FILE = "thresholds.mem",
    parameter bit THR_SEARCH  = 1'b0,
    parameter     THRESH_PREFIX = "thresholds"
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
    // the output queue's credits cover the pipeline from the reservation (in_fire) to the queue's
    // input, + 6 (hw/credit_queue.sv), so a beat per cycle never waits: 2 + threshold_count's at
    // most 5 for 255 thresholds + 6 fit the 16 words of one LUT RAM; the search's 1 + 6 * clog2(NUM_T + 1)
    // + 6 take the next multiple of 16
    localparam int SEARCH_DEPTH = 1 + 6 * $clog2(NUM_T + 1) + 6;
    localparam int QDEPTH       = THR_SEARCH ? (SEARCH_DEPTH + 15) / 16 * 16 : 16;

    // the input is taken while the output queue has a credit for its result
    logic              space;
    logic [FOLD_W-1:0] fold_reg;   // channel fold of the next beat
    logic              last_fold;  // fold_reg == CF-1 (a register)
    wire               in_fire = s_axis_tvalid && space;
    assign s_axis_tready = space;

    always_ff @(posedge clk) begin
        if (in_fire) begin
            fold_reg  <= last_fold ? '0 : fold_reg + 1'b1;
            last_fold <= last_fold ? CF == 1 : fold_reg == FOLD_W'(CF - 2);
        end
        if (rst) begin
            fold_reg  <= '0;
            last_fold <= CF == 1;
        end
    end

    logic [PE*OUT_W-1:0] act;
    logic                act_valid;

    if (THR_SEARCH) begin : g_search
        // stage 1: the beat and its fold registered (the search's memories are read at a register's
        // address); then one comparison per lane and result bit (hw/threshold_search.sv)
        logic [PE*IN_W-1:0] x1_reg;
        logic [FOLD_W-1:0]  f1_reg;
        logic               v1_reg;
        always_ff @(posedge clk) begin
            x1_reg <= s_axis_tdata;
            f1_reg <= fold_reg;
            v1_reg <= in_fire;
            if (rst) v1_reg <= 1'b0;
        end

        threshold_search #(
            .LANES(PE), .NUM_T(NUM_T), .NF(CF), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR),
            .THR_W(THR_W), .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .TAG_W(1), .PREFIX(THRESH_PREFIX)
        ) u_search (
            .clk(clk), .rst(rst), .value(x1_reg), .fold(f1_reg), .in_tag(v1_reg),
            .count(act), .out_tag(act_valid)
        );
    end else begin : g_count
        localparam int WORD_W = PE * NUM_T * THR_W;

        logic [WORD_W-1:0] thr_mem [CF];
        initial $readmemh(THRESH_FILE, thr_mem);

        // stage 1: the beat and its thresholds' read (at a register's address); stage 2: both
        // registered again (the read's second register: a block RAM's output register can take it)
        logic [PE*IN_W-1:0] x1_reg, x2_reg;
        logic [WORD_W-1:0]  thr_ram, thr2_reg;
        logic               v1_reg, v2_reg;
        always_ff @(posedge clk) begin
            x1_reg   <= s_axis_tdata;
            v1_reg   <= in_fire;
            thr_ram  <= thr_mem[fold_reg];
            x2_reg   <= x1_reg;
            thr2_reg <= thr_ram;
            v2_reg   <= v1_reg;
            if (rst) begin
                v1_reg <= 1'b0;
                v2_reg <= 1'b0;
            end
        end

        threshold_count #(
            .LANES(PE), .NUM_T(NUM_T), .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR), .THR_W(THR_W),
            .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .TAG_W(1)
        ) u_count (
            .clk(clk), .rst(rst), .value(x2_reg), .thresholds(thr2_reg), .in_tag(v2_reg),
            .count(act), .out_tag(act_valid)
        );
    end

    credit_queue #(
        .DATA_W(PE*OUT_W), .DEPTH(QDEPTH)
    ) u_out (
        .clk(clk), .rst(rst), .reserve(in_fire), .space(space),
        .s_axis_tdata(act), .s_axis_tvalid(act_valid),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
