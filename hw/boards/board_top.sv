// board_top: the accelerator behind a UART host link; the same on every board.
//
// Function  : uart_rx -> byte FIFO -> skid buffer -> frame_decoder -> skid buffer -> accelerator
//             -> frame_encoder -> uart_tx.
//             The host sends image frames and gets one response frame per frame header: the
//             result, or an error frame (bad length, type or checksum, or a frame abandoned after
//             TIMEOUT_CLKS cycles without a byte); see qnnflow/host.py for the protocol. Status
//             words travel from the decoder to the encoder through a FIFO, so frames may overlap
//             in the accelerator and responses still come back in order.
//             led[0] toggles on every response frame; led[1] lights for LED_HOLD_CLKS cycles
//             (rounded up to a power of two) after an error (an error frame, a UART framing
//             error or a receive overrun).
// Latency   : a result leaves after the accelerator's latency plus the encoder's byte times.
// Throughput: bounded by the UART: (frame bytes + 7) x 10 bit times per frame in (5 header
//             bytes and a CRC-16), the response in parallel.
// Ready     : no streams at the boundary; `uart_txd` is a register.
//
// The accelerator is the module `accelerator` (written by codegen, or a stand-in in tests) with
// ports clk, rst, s_axis_tdata/tvalid/tready/tlast and m_axis_tdata/tvalid/tready/tlast.
// Board-specific files in hw/boards/ add the clock (PLL) and the power-on reset around this.
//
// Parameters:
//   CLKS_PER_BIT   clock cycles per UART bit (clock / baud rate), >= 4
//   TIMEOUT_CLKS   cycles without a byte after which a started frame is abandoned
//   IN_W, IN_BEATS     accelerator input tdata width and beats per frame
//   OUT_W, OUT_BEATS   accelerator output tdata width and beats per frame
//   RX_FIFO_DEPTH  received bytes buffered while the accelerator's input stalls (>= 2)
//   STATUS_DEPTH   frames in flight between decoder and encoder (>= 2)
//   LED_HOLD_CLKS  cycles the error LED stays on (>= 1)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module board_top #(
    parameter int CLKS_PER_BIT  = 434,
    parameter int TIMEOUT_CLKS  = 1000000,
    parameter int IN_W          = 8,
    parameter int IN_BEATS      = 64,
    parameter int OUT_W         = 4,
    parameter int OUT_BEATS     = 1,
    parameter int RX_FIFO_DEPTH = 32,
    parameter int STATUS_DEPTH  = 8,
    parameter int LED_HOLD_CLKS = 10000000
) (
    input  wire logic       clk,
    input  wire logic       rst,

    input  wire logic       uart_rxd,
    output wire logic       uart_txd,

    output wire logic [1:0] led
);

    initial begin
        if (LED_HOLD_CLKS < 1) $fatal(1, "%m: LED_HOLD_CLKS (%0d) must be at least 1", LED_HOLD_CLKS);
    end

    // -- receive ---------------------------------------------------------------------------
    wire logic [7:0] rx_tdata, rxq_tdata, rxs_tdata;
    wire logic       rx_tvalid, rx_tready, rxq_tvalid, rxq_tready, rxs_tvalid, rxs_tready;
    wire logic       rx_overrun, rx_frame_error;

    uart_rx #(
        .CLKS_PER_BIT(CLKS_PER_BIT)
    ) u_uart_rx (
        .clk(clk), .rst(rst),
        .rxd(uart_rxd),
        .m_axis_tdata(rx_tdata), .m_axis_tvalid(rx_tvalid), .m_axis_tready(rx_tready),
        .overrun(rx_overrun), .frame_error(rx_frame_error)
    );

    fifo #(
        .DATA_W(8), .DEPTH(RX_FIFO_DEPTH), .USE_RAM(1'b1)
    ) u_rx_fifo (
        .clk(clk), .rst(rst),
        .s_axis_tdata(rx_tdata), .s_axis_tvalid(rx_tvalid), .s_axis_tready(rx_tready),
        .m_axis_tdata(rxq_tdata), .m_axis_tvalid(rxq_tvalid), .m_axis_tready(rxq_tready)
    );

    // the decoder's ready (from its state) ends here, not in the FIFO's read logic: on iCE40 the
    // path state -> ready -> FIFO read -> take -> state was the board's critical path
    skid_buffer #(
        .DATA_W(8)
    ) u_rx_skid (
        .clk(clk), .rst(rst),
        .s_axis_tdata(rxq_tdata), .s_axis_tvalid(rxq_tvalid), .s_axis_tready(rxq_tready),
        .m_axis_tdata(rxs_tdata), .m_axis_tvalid(rxs_tvalid), .m_axis_tready(rxs_tready)
    );

    // -- frames in ---------------------------------------------------------------------------
    wire logic [IN_W-1:0]  dec_tdata, in_tdata;
    wire logic             dec_tvalid, dec_tready, dec_tlast, in_tvalid, in_tready, in_tlast;
    wire logic [16:0]      st_tdata, stq_tdata;
    wire logic             st_tvalid, st_tready, stq_tvalid, stq_tready;

    frame_decoder #(
        .IN_W(IN_W), .IN_BEATS(IN_BEATS), .TIMEOUT_CLKS(TIMEOUT_CLKS)
    ) u_decoder (
        .clk(clk), .rst(rst),
        .s_axis_tdata(rxs_tdata), .s_axis_tvalid(rxs_tvalid), .s_axis_tready(rxs_tready),
        .m_axis_tdata(dec_tdata), .m_axis_tvalid(dec_tvalid), .m_axis_tready(dec_tready), .m_axis_tlast(dec_tlast),
        .m_status_tdata(st_tdata), .m_status_tvalid(st_tvalid), .m_status_tready(st_tready)
    );

    // the decoder sits by the UART pins, the accelerator's first layer wherever the placer puts
    // it: this slice keeps both long routes register to register (TFC-w1a1 on ECP5: decoder
    // registers -> the first layer's issue logic -> its input enables was the critical path)
    skid_buffer #(
        .DATA_W(IN_W + 1)
    ) u_in_skid (
        .clk(clk), .rst(rst),
        .s_axis_tdata({dec_tlast, dec_tdata}), .s_axis_tvalid(dec_tvalid), .s_axis_tready(dec_tready),
        .m_axis_tdata({in_tlast, in_tdata}), .m_axis_tvalid(in_tvalid), .m_axis_tready(in_tready)
    );

    fifo #(
        .DATA_W(17), .DEPTH(STATUS_DEPTH), .USE_RAM(1'b0)
    ) u_status_fifo (
        .clk(clk), .rst(rst),
        .s_axis_tdata(st_tdata), .s_axis_tvalid(st_tvalid), .s_axis_tready(st_tready),
        .m_axis_tdata(stq_tdata), .m_axis_tvalid(stq_tvalid), .m_axis_tready(stq_tready)
    );

    // -- the accelerator -----------------------------------------------------------------------
    wire logic [OUT_W-1:0] out_tdata;
    wire logic             out_tvalid, out_tready, out_tlast;

    accelerator u_accel (
        .clk(clk), .rst(rst),
        .s_axis_tdata(in_tdata), .s_axis_tvalid(in_tvalid), .s_axis_tready(in_tready), .s_axis_tlast(in_tlast),
        .m_axis_tdata(out_tdata), .m_axis_tvalid(out_tvalid), .m_axis_tready(out_tready), .m_axis_tlast(out_tlast)
    );

    // -- frames out ----------------------------------------------------------------------------
    wire logic [7:0] tx_tdata;
    wire logic       tx_tvalid, tx_tready;

    frame_encoder #(
        .OUT_W(OUT_W), .OUT_BEATS(OUT_BEATS)
    ) u_encoder (
        .clk(clk), .rst(rst),
        .s_status_tdata(stq_tdata), .s_status_tvalid(stq_tvalid), .s_status_tready(stq_tready),
        .s_axis_tdata(out_tdata), .s_axis_tvalid(out_tvalid), .s_axis_tready(out_tready),
        .m_axis_tdata(tx_tdata), .m_axis_tvalid(tx_tvalid), .m_axis_tready(tx_tready)
    );

    uart_tx #(
        .CLKS_PER_BIT(CLKS_PER_BIT)
    ) u_uart_tx (
        .clk(clk), .rst(rst),
        .s_axis_tdata(tx_tdata), .s_axis_tvalid(tx_tvalid), .s_axis_tready(tx_tready),
        .txd(uart_txd)
    );

    // -- LEDs ----------------------------------------------------------------------------------
    localparam int HOLD_W = LED_HOLD_CLKS > 1 ? $clog2(LED_HOLD_CLKS) : 1;

    logic            frame_led_reg;
    // counts up from 0 after an error; the error LED is on until the top bit sets, that is for
    // 2**HOLD_W >= LED_HOLD_CLKS cycles (an up-counter cleared through the flops' reset input
    // keeps the adder in the carry chain, which matters on iCE40)
    logic [HOLD_W:0] err_hold_reg;

    wire status_fire = stq_tvalid && stq_tready;
    wire status_err  = stq_tdata[15:12] == 4'hE;  // error codes are 0xE1..0xE4

    assign led = {!err_hold_reg[HOLD_W], frame_led_reg};

    always_ff @(posedge clk) begin
        if (status_fire) frame_led_reg <= !frame_led_reg;
        if ((status_fire && status_err) || rx_overrun || rx_frame_error) err_hold_reg <= '0;
        else if (!err_hold_reg[HOLD_W]) err_hold_reg <= err_hold_reg + 1'b1;
        if (rst) begin
            frame_led_reg <= 1'b0;
            err_hold_reg  <= {1'b1, HOLD_W'(0)};
        end
    end

    wire unused_ok = &{1'b0, out_tlast};

endmodule

`resetall
