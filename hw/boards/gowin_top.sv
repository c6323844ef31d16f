// gowin_top: board_top on a Gowin GW2A board (Tang Nano 20K): clock, power-on reset, pins.
//
// Function  : the oscillator `clk_osc` drives an rPLL (when USE_PLL) with internal feedback whose
//             CLKOUT is the design clock: f = FCLKIN * (FBDIV_SEL + 1) / (IDIV_SEL + 1),
//             VCO = f * ODIV_SEL. qnnflow.flows.implement.boards computes the dividers for the
//             requested clock. Without USE_PLL the oscillator is the design clock. Reset is held
//             until the PLL has locked (synchronized) and then for 15 more cycles
//             (hw/boards/board_core.sv, hw/boards/power_on_reset.sv).
// Pins      : clk_osc, uart_rx, uart_tx, led[1:0] (named the same in every constraint file).
//
// Parameters:
//   USE_PLL                          1: clock from the PLL; 0: clock = clk_osc
//   FCLKIN                           the oscillator in MHz, as a string ("27"): rPLL's input
//   IDIV_SEL, FBDIV_SEL, ODIV_SEL    rPLL settings (see above)
//   LED_ACTIVE_LOW                   1 if the board's LEDs light on a low pin
//   the rest                         passed to board_top

`resetall
`timescale 1ns / 1ps
`default_nettype none

module gowin_top #(
    parameter bit    USE_PLL        = 1'b0,
    parameter        FCLKIN         = "27",  // a string (Yosys reads no `string` type)
    parameter int    IDIV_SEL       = 0,
    parameter int    FBDIV_SEL      = 0,
    parameter int    ODIV_SEL       = 32,
    parameter bit    LED_ACTIVE_LOW = 1'b1,
    parameter int    CLKS_PER_BIT   = 234,
    parameter int    TIMEOUT_CLKS   = 1000000,
    parameter int    IN_W           = 8,
    parameter int    IN_BEATS       = 64,
    parameter int    OUT_W          = 4,
    parameter int    OUT_BEATS      = 1,
    parameter int    LED_HOLD_CLKS  = 10000000
) (
    input  wire logic       clk_osc,
    input  wire logic       uart_rx,
    output wire logic       uart_tx,
    output wire logic [1:0] led
);

    wire logic clk;
    wire logic locked;

    if (USE_PLL) begin : g_pll
        rPLL #(
            .FCLKIN(FCLKIN),
            .DEVICE("GW2A-18C"),
            .IDIV_SEL(IDIV_SEL),
            .FBDIV_SEL(FBDIV_SEL),
            .ODIV_SEL(ODIV_SEL),
            .DYN_IDIV_SEL("false"),
            .DYN_FBDIV_SEL("false"),
            .DYN_ODIV_SEL("false"),
            .CLKFB_SEL("internal"),
            .CLKOUT_BYPASS("false")
        ) u_pll (
            .CLKIN(clk_osc),
            .CLKFB(1'b0),
            .RESET(1'b0),
            .RESET_P(1'b0),
            .FBDSEL(6'b0),
            .IDSEL(6'b0),
            .ODSEL(6'b0),
            .PSDA(4'b0),
            .DUTYDA(4'b0),
            .FDLY(4'b0),
            .CLKOUT(clk),
            .CLKOUTP(),
            .CLKOUTD(),
            .CLKOUTD3(),
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
