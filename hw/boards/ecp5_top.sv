// ecp5_top: board_top on a Lattice ECP5 board (ULX3S, OrangeCrab): clock, power-on reset, pins.
//
// Function  : the oscillator `clk_osc` drives an EHXPLLL (when USE_PLL) whose CLKOP is the design
//             clock: f = f_osc / CLKI_DIV * CLKFB_DIV (feedback from CLKOP), VCO = f * CLKOP_DIV.
//             qnnflow.flows.implement.boards computes the dividers for the requested clock. Without
//             USE_PLL the oscillator is the design clock. Reset is held until the PLL has locked
//             (synchronized) and then for 15 more cycles (hw/boards/board_core.sv,
//             hw/boards/power_on_reset.sv).
// Pins      : clk_osc, uart_rx, uart_tx, led[1:0] (named the same in every .lpf file).
//
// Parameters:
//   USE_PLL                                       1: clock from the PLL; 0: clock = clk_osc
//   CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE   EHXPLLL settings (see above)
//   LED_ACTIVE_LOW                                1 if the board's LEDs light on a low pin
//   the rest                                      passed to board_top

`resetall
`timescale 1ns / 1ps
`default_nettype none

module ecp5_top #(
    parameter bit USE_PLL        = 1'b0,
    parameter int CLKI_DIV       = 1,
    parameter int CLKFB_DIV      = 1,
    parameter int CLKOP_DIV      = 12,
    parameter int CLKOP_CPHASE   = 11,
    parameter bit LED_ACTIVE_LOW = 1'b0,
    parameter int CLKS_PER_BIT   = 434,
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
        (* ICP_CURRENT = "12" *) (* LPF_RESISTOR = "8" *) (* MFG_ENABLE_FILTEROPAMP = "1" *)
        (* MFG_GMCREF_SEL = "2" *)
        EHXPLLL #(
            .PLLRST_ENA("DISABLED"),
            .INTFB_WAKE("DISABLED"),
            .STDBY_ENABLE("DISABLED"),
            .DPHASE_SOURCE("DISABLED"),
            .OUTDIVIDER_MUXA("DIVA"),
            .CLKOP_ENABLE("ENABLED"),
            .CLKOP_DIV(CLKOP_DIV),
            .CLKOP_CPHASE(CLKOP_CPHASE),
            .CLKOP_FPHASE(0),
            .CLKI_DIV(CLKI_DIV),
            .CLKFB_DIV(CLKFB_DIV),
            .FEEDBK_PATH("CLKOP")
        ) u_pll (
            .CLKI(clk_osc),
            .CLKFB(clk),
            .CLKOP(clk),
            .RST(1'b0),
            .STDBY(1'b0),
            .PHASESEL0(1'b0),
            .PHASESEL1(1'b0),
            .PHASEDIR(1'b0),
            .PHASESTEP(1'b0),
            .PHASELOADREG(1'b0),
            .PLLWAKESYNC(1'b0),
            .ENCLKOP(1'b0),
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
