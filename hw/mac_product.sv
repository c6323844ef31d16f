// mac_product: the product of one input element and one weight, as the dot products of
// hw/mac_backend.sv (and so hw/mvau.sv and hw/vvau.sv) add them up.
//
// Function  : p = x * w in ACC_W bits (two's complement, wrapping), where x and w are read as
//             unsigned, two's complement or bipolar (one bit, 0 meaning -1, 1 meaning +1). With
//             IN_BIPOLAR and W_BIPOLAR both set it is the XNOR of the two bits instead (1 when
//             the signs agree), the term of an XNOR-popcount. How it is built: a bipolar operand
//             selects +/- the other; wide products (IN_W > 4 and W_W > 4) are left to a
//             multiplier (a DSP); narrow ones are shift-and-add over the bits of the narrower
//             operand (its top bit subtracted when it is signed).
// Timing    : combinational.
//
// Parameters:
//   IN_W, W_W               element and weight widths (1 when bipolar)
//   IN_SIGNED, W_SIGNED     two's complement operands (ternary weights are W_W = 2 signed)
//   IN_BIPOLAR, W_BIPOLAR   bipolar operands {-1, +1}
//   ACC_W                   width of the product (the accumulator width of the dot product)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mac_product #(
    parameter int IN_W       = 2,
    parameter bit IN_SIGNED  = 1'b0,
    parameter bit IN_BIPOLAR = 1'b0,
    parameter int W_W        = 2,
    parameter bit W_SIGNED   = 1'b1,
    parameter bit W_BIPOLAR  = 1'b0,
    parameter int ACC_W      = 8
) (
    input  wire logic [IN_W-1:0]  x,
    input  wire logic [W_W-1:0]   w,
    output wire logic [ACC_W-1:0] p
);

    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_in_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (W_BIPOLAR && W_W != 1) begin : g_bad_w_bipolar
        $fatal(1, "%m: bipolar weights are 1 bit wide, not W_W = %0d", W_W);
    end

    localparam bit XNOR    = IN_BIPOLAR && W_BIPOLAR;
    // narrow products become shift-and-add logic; only wide ones are left to multipliers (DSPs)
    localparam bit USE_MUL = !IN_BIPOLAR && !W_BIPOLAR && IN_W > 4 && W_W > 4;

    logic signed [ACC_W-1:0] r;
    assign p = r;

    always_comb begin
        logic signed [ACC_W-1:0] xe, we;
        logic match;
        xe = IN_SIGNED ? ACC_W'($signed(x)) : ACC_W'(x);
        we = W_SIGNED ? ACC_W'($signed(w)) : ACC_W'(w);
        r = '0;
        match = 1'b0;
        if (XNOR) begin
            match = x[0] ~^ w[0];  // the signs agree (in 1 bit: wider operands would XNOR 0s to 1s)
            r = ACC_W'(match);
        end else if (W_BIPOLAR) begin
            r = w[0] ? xe : -xe;
        end else if (IN_BIPOLAR) begin
            r = x[0] ? we : -we;
        end else if (USE_MUL) begin
            r = xe * we;
        end else if (W_W <= IN_W) begin
            for (int i = 0; i < W_W; i++) begin
                if (w[i]) r = (W_SIGNED && i == W_W - 1) ? r - (xe <<< i) : r + (xe <<< i);
            end
        end else begin
            for (int i = 0; i < IN_W; i++) begin
                if (x[i]) r = (IN_SIGNED && i == IN_W - 1) ? r - (we <<< i) : r + (we <<< i);
            end
        end
    end

endmodule

`resetall
