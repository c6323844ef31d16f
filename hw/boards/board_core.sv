// board_core: the family-independent part of every board wrapper (ecp5_top, ice40_top,
// gowin_top): the power-on reset from the clock's lock, the UART board top, the LEDs' polarity.
//
// Function  : rst is held while `locked` is low and for a few cycles after it rises
//             (hw/boards/power_on_reset.sv); hw/boards/board_top.sv runs on clk; led is its LED
//             outputs, inverted when LED_ACTIVE_LOW.
//
// Parameters:
//   LED_ACTIVE_LOW  1 if the board's LEDs light on a low pin
//   the rest        passed to board_top

`resetall
`timescale 1ns / 1ps
`default_nettype none

module board_core #(
    parameter bit LED_ACTIVE_LOW = 1'b0,
    parameter int CLKS_PER_BIT   = 434,
    parameter int TIMEOUT_CLKS   = 1000000,
    parameter int IN_W           = 8,
    parameter int IN_BEATS       = 64,
    parameter int OUT_W          = 4,
    parameter int OUT_BEATS      = 1,
    parameter int LED_HOLD_CLKS  = 10000000
) (
    input  wire logic       clk,
    input  wire logic       locked,
    input  wire logic       uart_rx,
    output wire logic       uart_tx,
    output wire logic [1:0] led
);

    wire logic rst;

    power_on_reset u_reset (
        .clk(clk),
        .locked(locked),
        .rst(rst)
    );

    wire logic [1:0] led_on;

    board_top #(
        .CLKS_PER_BIT(CLKS_PER_BIT), .TIMEOUT_CLKS(TIMEOUT_CLKS),
        .IN_W(IN_W), .IN_BEATS(IN_BEATS), .OUT_W(OUT_W), .OUT_BEATS(OUT_BEATS),
        .LED_HOLD_CLKS(LED_HOLD_CLKS)
    ) u_board (
        .clk(clk), .rst(rst),
        .uart_rxd(uart_rx), .uart_txd(uart_tx),
        .led(led_on)
    );

    assign led = LED_ACTIVE_LOW ? ~led_on : led_on;

endmodule

`resetall
