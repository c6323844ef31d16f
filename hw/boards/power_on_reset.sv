// power_on_reset: the design reset of a board wrapper (hw/boards/ecp5_top.sv, ice40_top.sv, gowin_top.sv).
//
// Function  : rst is high from configuration until `locked` (the PLL's lock, or 1 without a PLL)
//             has been high for 2 cycles (a two-flip-flop synchronizer) and then for 15 more
//             cycles; when the synchronized lock drops, rst rises again (5 cycles later) and the
//             count starts over.
// Timing    : after `locked` rises, rst falls 19 cycles later (synchronous to clk; rst is a register
//             whose input is another register: the reset net's driver sits where the placer puts
//             it, near the middle of its loads, and takes no logic of the counter there; with the
//             counter's compare in front of it, TFC-w1a1's critical path ran from the counter to
//             that LUT and back, two 3.7 ns routes, at 120.8 MHz).
//             There is no reset input: the FPGA configuration loads the registers with their initial values (counters 0, rst 1).
//
// Parameters: none.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module power_on_reset (
    input  wire logic clk,
    input  wire logic locked,
    output wire logic rst
);

    // power-on reset: the configuration loads these registers with 0 (there is no reset to use)
    // verilator lint_off PROCASSINIT
    logic [1:0] locked_sync_reg = 2'b00;
    logic [3:0] rst_cnt_reg     = 4'd0;
    logic       rst_pre_reg     = 1'b1;  // beside the counter
    logic       rst_reg         = 1'b1;  // the reset net's driver
    // verilator lint_on PROCASSINIT

    // a register drives the reset net: it reaches every flip-flop of the design, so no logic
    // may stand before that long route
    assign rst = rst_reg;

    always_ff @(posedge clk) begin
        locked_sync_reg <= {locked_sync_reg[0], locked};
        if (!locked_sync_reg[1]) rst_cnt_reg <= 4'd0;
        else if (rst_cnt_reg != 4'hF) rst_cnt_reg <= rst_cnt_reg + 1'b1;
        rst_pre_reg <= rst_cnt_reg != 4'hF;
        rst_reg     <= rst_pre_reg;
    end

endmodule

`resetall
