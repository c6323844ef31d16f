// ice40_top: board_top on a Lattice iCE40 board (iCEBreaker): clock, power-on reset, pins.
//
// Function  : the oscillator pin `clk_osc` drives an SB_PLL40_PAD (when USE_PLL), simple
//             feedback: f = f_osc * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ); qnnflow.flows.implement.boards
//             computes DIVR, DIVF, DIVQ and FILTER_RANGE for the requested clock. Without USE_PLL
//             the oscillator is the design clock. Reset is held until the PLL has locked
//             (synchronized) and then for 15 more cycles (hw/boards/board_core.sv,
//             hw/boards/power_on_reset.sv).
// Pins      : clk_osc, uart_rx, uart_tx, led[1:0] (named the same in every constraint file).
//
// Parameters:
//   USE_PLL                          1: clock from the PLL; 0: clock = clk_osc
//   DIVR, DIVF, DIVQ, FILTER_RANGE   SB_PLL40_PAD settings (see above)
//   LED_ACTIVE_LOW                   1 if the board's LEDs light on a low pin
//   the rest                         passed to board_top

`resetall
`timescale 1ns / 1ps
`default_nettype none

module ice40_top #(
    parameter bit USE_PLL        = 1'b0,
    parameter int DIVR           = 0,
    parameter int DIVF           = 0,
    parameter int DIVQ           = 1,
    parameter int FILTER_RANGE   = 1,
    parameter bit LED_ACTIVE_LOW = 1'b1,
    parameter int CLKS_PER_BIT   = 104,
    parameter int TIMEOUT_CLKS   = 1000000,
    parameter int IN_W           = 8,
    parameter int IN_BEATS       = 64,
    parameter int OUT_W          = 4,
    parameter int OUT_BEATS      = 1,
    parameter int LED_HOLD_CLKS  = 10000000
) (
    input  wire logic       clk_osc,
    input  wire logic       uart_rx,
    output wire logic       uart_tx,
    output wire logic [1:0] led
);

    wire logic clk;
    wire logic locked;

    if (USE_PLL) begin : g_pll
        SB_PLL40_PAD #(
            .FEEDBACK_PATH("SIMPLE"),
            .DIVR(4'(DIVR)),
            .DIVF(7'(DIVF)),
            .DIVQ(3'(DIVQ)),
            .FILTER_RANGE(3'(FILTER_RANGE))
        ) u_pll (
            .PACKAGEPIN(clk_osc),
            .PLLOUTGLOBAL(clk),
            .RESETB(1'b1),
            .BYPASS(1'b0),
            .LOCK(locked)
        );
    end else begin : g_no_pll
        assign clk    = clk_osc;
        assign locked = 1'b1;
    end

    board_core #(
        .LED_ACTIVE_LOW(LED_ACTIVE_LOW),
        .CLKS_PER_BIT(CLKS_PER_BIT), .TIMEOUT_CLKS(TIMEOUT_CLKS),
        .IN_W(IN_W), .IN_BEATS(IN_BEATS), .OUT_W(OUT_W), .OUT_BEATS(OUT_BEATS),
        .LED_HOLD_CLKS(LED_HOLD_CLKS)
    ) u_core (
        .clk(clk), .locked(locked),
        .uart_rx(uart_rx), .uart_tx(uart_tx),
        .led(led)
    );

endmodule

`resetall
