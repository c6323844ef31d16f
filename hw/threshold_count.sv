// threshold_count: the multi-threshold activation of LANES values, pipelined: one registered
// comparison per threshold, then the comparisons counted by hw/adder_tree.sv. Used by
// hw/thresholding.sv and by the threshold stage of hw/mac_pipeline.sv (mvau, vvau).
//
// Function  : count[l] = (number of thresholds t of lane l with t <= value[l]) + OUT_OFFSET, in
//             OUT_W bits (wrapping; two's complement when OUT_OFFSET < 0). value is unsigned, two's
//             complement or (IN_BIPOLAR) bipolar, one bit, 0 meaning -1 and 1 meaning +1 (the
//             thresholds compare with -1 / +1, not with the code). The thresholds are two's
//             complement; value and thresholds are compared as signed numbers of CMP_W bits, wide
//             enough for both. Lane l's value is value[l*IN_W +: IN_W], its threshold t
//             thresholds[(l*NUM_T + t)*THR_W +: THR_W], its count count[l*OUT_W +: OUT_W].
//             out_tag is the in_tag of the same values.
// Latency   : 1 + the adder tree's (LPS = 2, PRE = 0) over NUM_T one-bit terms: NUM_T <= 4: 2;
//             <= 16: 3; <= 64: 4; <= 255: 5. A value enters every cycle; the pipeline
//             never stops (users count credits: hw/credit_queue.sv).
//
// Parameters:
//   LANES       values compared side by side, each with its own thresholds
//   NUM_T       thresholds per lane (>= 1)
//   IN_W        value width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1, +1} (IN_W = 1)
//   THR_W       threshold width (two's complement)
//   OUT_W       count width
//   OUT_OFFSET  signed offset added to the count
//   TAG_W       width of the tag that travels with the values (cleared by rst)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module threshold_count #(
    parameter int LANES      = 1,
    parameter int NUM_T      = 3,
    parameter int IN_W       = 8,
    parameter bit IN_SIGNED  = 1'b0,
    parameter bit IN_BIPOLAR = 1'b0,
    parameter int THR_W      = 9,
    parameter int OUT_W      = 2,
    parameter int OUT_OFFSET = 0,
    parameter int TAG_W      = 1
) (
    input  wire logic                           clk,
    input  wire logic                           rst,

    input  wire logic [LANES*IN_W-1:0]          value,
    input  wire logic [LANES*NUM_T*THR_W-1:0]   thresholds,
    input  wire logic [TAG_W-1:0]               in_tag,

    output wire logic [LANES*OUT_W-1:0]         count,
    output wire logic [TAG_W-1:0]               out_tag
);

    if (NUM_T < 1) begin : g_bad_num_t
        $fatal(1, "%m: NUM_T (%0d) must be at least 1", NUM_T);
    end
    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (LANES < 1 || IN_W < 1 || THR_W < 1 || OUT_W < 1) begin : g_bad_width
        $fatal(1, "%m: LANES (%0d), IN_W (%0d), THR_W (%0d) and OUT_W (%0d) must be at least 1",
               LANES, IN_W, THR_W, OUT_W);
    end

    // an unsigned value needs a sign bit; a bipolar one two bits for -1 and +1
    localparam int VAL_W = IN_SIGNED && !IN_BIPOLAR ? IN_W : IN_W + 1;
    localparam int CMP_W = THR_W > VAL_W ? THR_W : VAL_W;
    localparam int CNT_W = $clog2(NUM_T + 1);

    // t <= x for signed values of CMP_W bits; over 12 bits as two carry chains of half the width
    // side by side, joined by a LUT (signed upper halves, unsigned lower): one chain of 19 bits and
    // its carry-out took 8.4 ns with the routes around it on ECP5 (TFC-w1a1's first layer)
    localparam int SPLIT_W = 12;
    localparam int LO_W    = CMP_W > SPLIT_W ? CMP_W / 2 : 1;
    function automatic logic at_most(input logic [CMP_W-1:0] t, input logic [CMP_W-1:0] x);
        if (CMP_W <= SPLIT_W) begin
            at_most = $signed(t) <= $signed(x);
        end else begin
            logic [CMP_W-LO_W-1:0] t_hi, x_hi;
            logic [LO_W-1:0]       t_lo, x_lo;
            {t_hi, t_lo} = t;
            {x_hi, x_lo} = x;
            at_most = $signed(t_hi) < $signed(x_hi) || (t_hi == x_hi && t_lo <= x_lo);
        end
    endfunction

    // ---------------------------------------------------------------- comparisons, registered
    logic [LANES*NUM_T-1:0] ge_reg;
    logic [TAG_W-1:0]       tag_reg;
    always_ff @(posedge clk) begin
        for (int l = 0; l < LANES; l++) begin
            logic signed [CMP_W-1:0] x;
            if (IN_BIPOLAR) x = value[l*IN_W] ? CMP_W'(1) : -CMP_W'(1);
            else if (IN_SIGNED) x = CMP_W'($signed(value[l*IN_W +: IN_W]));
            else x = CMP_W'(value[l*IN_W +: IN_W]);
            for (int t = 0; t < NUM_T; t++) begin
                ge_reg[l*NUM_T + t] <= at_most(CMP_W'($signed(thresholds[(l*NUM_T + t)*THR_W +: THR_W])), x);
            end
        end
        tag_reg <= in_tag;
        if (rst) tag_reg <= '0;
    end

    // ---------------------------------------------------------------- counted by a tree
    logic [LANES*CNT_W-1:0] n;
    adder_tree #(
        .LANES(LANES), .N(NUM_T), .IN_W(1), .SIGNED(1'b0), .OUT_W(CNT_W), .LPS(2), .PRE(0), .TAG_W(TAG_W)
    ) u_count (
        .clk(clk), .rst(rst), .terms(ge_reg), .in_tag(tag_reg), .sum(n), .out_tag(out_tag)
    );

    for (genvar l = 0; l < LANES; l++) begin : g_offset
        assign count[l*OUT_W +: OUT_W] = OUT_W'(n[l*CNT_W +: CNT_W]) + OUT_W'(OUT_OFFSET);
    end

endmodule

`resetall
