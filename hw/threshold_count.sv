// threshold_count: the multi-threshold activation of one value, as hw/thresholding.sv computes it
// (the threshold stages of hw/mvau.sv and hw/vvau.sv compute the same inline).
//
// Function  : count = (number of thresholds t with t <= value) + OUT_OFFSET, in OUT_W bits
//             (wrapping; two's complement when OUT_OFFSET < 0). value is unsigned, two's
//             complement or (IN_BIPOLAR) bipolar, one bit, 0 meaning -1 and 1 meaning +1 (the
//             thresholds compare with -1 / +1, not with the code). The thresholds are two's
//             complement; value and thresholds are compared as signed numbers of CMP_W bits,
//             wide enough for both.
// Timing    : combinational.
//
// Parameters:
//   NUM_T       number of thresholds (>= 1); threshold t at bits [t*THR_W +: THR_W]
//   IN_W        value width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1, +1} (IN_W = 1)
//   THR_W       threshold width (two's complement)
//   OUT_W       count width
//   OUT_OFFSET  signed offset added to the count

`resetall
`timescale 1ns / 1ps
`default_nettype none

module threshold_count #(
    parameter int NUM_T      = 3,
    parameter int IN_W       = 8,
    parameter bit IN_SIGNED  = 1'b0,
    parameter bit IN_BIPOLAR = 1'b0,
    parameter int THR_W      = 9,
    parameter int OUT_W      = 2,
    parameter int OUT_OFFSET = 0
) (
    input  wire logic [IN_W-1:0]        value,
    input  wire logic [NUM_T*THR_W-1:0] thresholds,
    output wire logic [OUT_W-1:0]       count
);

    if (NUM_T < 1) begin : g_bad_num_t
        $fatal(1, "%m: NUM_T (%0d) must be at least 1", NUM_T);
    end
    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (IN_W < 1 || THR_W < 1 || OUT_W < 1) begin : g_bad_width
        $fatal(1, "%m: IN_W (%0d), THR_W (%0d) and OUT_W (%0d) must be at least 1", IN_W, THR_W, OUT_W);
    end

    // an unsigned value needs a sign bit; a bipolar one two bits for -1 and +1
    localparam int VAL_W = IN_SIGNED && !IN_BIPOLAR ? IN_W : IN_W + 1;
    localparam int CMP_W = THR_W > VAL_W ? THR_W : VAL_W;

    logic [OUT_W-1:0] count_c;
    assign count = count_c;

    always_comb begin
        logic signed [CMP_W-1:0] x;
        if (IN_BIPOLAR) x = value[0] ? CMP_W'(1) : -CMP_W'(1);
        else if (IN_SIGNED) x = CMP_W'($signed(value));
        else x = CMP_W'(value);
        count_c = OUT_W'(OUT_OFFSET);
        for (int t = 0; t < NUM_T; t++) begin
            if ($signed(CMP_W'($signed(thresholds[t*THR_W +: THR_W]))) <= x) count_c = count_c + 1'b1;
        end
    end

endmodule

`resetall
