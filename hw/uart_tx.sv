// uart_tx: 8N1 UART transmitter fed by a byte stream.
//
// Function  : sends each s_axis byte on `txd` (idle high): a start bit, 8 data bits LSB first,
//             a stop bit.
// Latency   : the start bit begins 1 cycle after the byte is accepted.
// Throughput: one byte per 10 bit times plus 2 cycles (the stop bit of a byte followed at once
//             by another is 2 cycles longer than a bit).
// Ready     : s_axis_tready is a register (high while the transmitter is idle); `txd` is a
//             register, so the pin has no glitches.
//
// Parameters:
//   CLKS_PER_BIT  clock cycles per bit (clock frequency / baud rate, rounded), >= 2

`resetall
`timescale 1ns / 1ps
`default_nettype none

module uart_tx #(
    parameter int CLKS_PER_BIT = 434
) (
    input  wire logic       clk,
    input  wire logic       rst,

    input  wire logic [7:0] s_axis_tdata,
    input  wire logic       s_axis_tvalid,
    output wire logic       s_axis_tready,

    output wire logic       txd
);

    initial begin
        if (CLKS_PER_BIT < 2) $fatal(1, "%m: CLKS_PER_BIT (%0d) must be at least 2", CLKS_PER_BIT);
    end

    localparam int CNT_W = $clog2(CLKS_PER_BIT + 1);
    localparam logic [CNT_W-1:0] FULL_BIT = CNT_W'(CLKS_PER_BIT - 1);

    // frame_reg holds the bits still to send, LSB first: start, 8 data, stop
    logic [9:0]       frame_reg;
    logic [3:0]       bits_left_reg;
    logic [CNT_W-1:0] cnt_reg;
    logic             cnt_zero_reg;  // cnt_reg == 0, kept beside it: no compare before the branch
    logic             ready_reg;
    logic             txd_reg;

    assign s_axis_tready = ready_reg;
    assign txd           = txd_reg;

    always_ff @(posedge clk) begin
        if (ready_reg) begin
            if (s_axis_tvalid) begin
                frame_reg     <= {1'b1, s_axis_tdata, 1'b0};
                bits_left_reg <= 4'd10;
                cnt_reg       <= '0;
                cnt_zero_reg  <= 1'b1;
                ready_reg     <= 1'b0;
            end
        end else if (!cnt_zero_reg) begin
            cnt_reg      <= cnt_reg - 1'b1;
            cnt_zero_reg <= cnt_reg == CNT_W'(1);
        end else if (bits_left_reg != '0) begin
            txd_reg       <= frame_reg[0];
            frame_reg     <= {1'b1, frame_reg[9:1]};
            bits_left_reg <= bits_left_reg - 1'b1;
            cnt_reg       <= FULL_BIT;
            cnt_zero_reg  <= 1'b0;  // FULL_BIT >= 1
        end else begin
            // the stop bit has been on the line for a full bit time
            ready_reg <= 1'b1;
        end

        if (rst) begin
            ready_reg    <= 1'b1;
            txd_reg      <= 1'b1;
            cnt_zero_reg <= 1'b1;
        end
    end

endmodule

`resetall
