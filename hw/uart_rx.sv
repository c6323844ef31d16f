// uart_rx: 8N1 UART receiver with a byte stream output.
//
// Function  : samples the serial line `rxd` (idle high; one start bit, 8 data bits LSB first, one
//             stop bit) and puts each received byte on m_axis.
// Timing    : `rxd` goes through a two-flop synchronizer. A start bit is taken on a falling edge
//             and checked again at its middle (a glitch shorter than half a bit is ignored); data
//             bits are sampled at their middles; the byte is offered 1 cycle after the middle of
//             the stop bit.
// Throughput: one byte per 10 bit times, the line rate.
// Ready     : a UART cannot be stalled. m_axis holds one byte; when a new byte completes while
//             the previous one was not taken, the new byte is dropped and `overrun` pulses for one
//             cycle. A stop bit that is low (framing error or a break) drops the byte and pulses
//             `frame_error`; the receiver then waits for the line to go high before it looks for
//             the next start bit. m_axis_* are registers.
//
// Parameters:
//   CLKS_PER_BIT  clock cycles per bit (clock frequency / baud rate, rounded), >= 4

`resetall
`timescale 1ns / 1ps
`default_nettype none

module uart_rx #(
    parameter int CLKS_PER_BIT = 434
) (
    input  wire logic       clk,
    input  wire logic       rst,

    input  wire logic       rxd,

    output wire logic [7:0] m_axis_tdata,
    output wire logic       m_axis_tvalid,
    input  wire logic       m_axis_tready,

    output wire logic       overrun,
    output wire logic       frame_error
);

    initial begin
        if (CLKS_PER_BIT < 4) $fatal(1, "%m: CLKS_PER_BIT (%0d) must be at least 4", CLKS_PER_BIT);
    end

    localparam int CNT_W = $clog2(CLKS_PER_BIT + 1);
    localparam logic [CNT_W-1:0] FULL_BIT = CNT_W'(CLKS_PER_BIT - 1);
    localparam logic [CNT_W-1:0] HALF_BIT = CNT_W'(CLKS_PER_BIT / 2 - 1);

    typedef enum logic [2:0] {IDLE, START, DATA, STOP, WAIT_HIGH} state_t;

    // synchronizer; the line idles high, so reset to 1 to avoid a false start bit
    logic [1:0] sync_reg;
    wire        line = sync_reg[1];

    state_t           state_reg;
    logic [CNT_W-1:0] cnt_reg;
    logic             cnt_zero_reg;  // cnt_reg == 0, kept beside it: no compare before the branches
    logic [2:0]       bit_reg;
    logic [7:0]       shift_reg;
    logic [7:0]       data_reg;
    logic             valid_reg;
    logic             overrun_reg;
    logic             frame_error_reg;

    assign m_axis_tdata  = data_reg;
    assign m_axis_tvalid = valid_reg;
    assign overrun       = overrun_reg;
    assign frame_error   = frame_error_reg;

    always_ff @(posedge clk) begin
        sync_reg        <= {sync_reg[0], rxd};
        overrun_reg     <= 1'b0;
        frame_error_reg <= 1'b0;
        if (valid_reg && m_axis_tready) valid_reg <= 1'b0;

        case (state_reg)
            IDLE: begin
                cnt_reg <= HALF_BIT;
                cnt_zero_reg <= HALF_BIT == '0;
                if (!line) state_reg <= START;
            end
            START: begin
                // at the middle of the start bit: still low, or it was a glitch
                if (!cnt_zero_reg) begin
                    cnt_reg <= cnt_reg - 1'b1;
                    cnt_zero_reg <= cnt_reg == CNT_W'(1);
                end else if (line) begin
                    state_reg <= IDLE;
                end else begin
                    cnt_reg   <= FULL_BIT;
                    cnt_zero_reg <= FULL_BIT == '0;
                    bit_reg   <= '0;
                    state_reg <= DATA;
                end
            end
            DATA: begin
                if (!cnt_zero_reg) begin
                    cnt_reg <= cnt_reg - 1'b1;
                    cnt_zero_reg <= cnt_reg == CNT_W'(1);
                end else begin
                    cnt_reg   <= FULL_BIT;
                    cnt_zero_reg <= FULL_BIT == '0;
                    shift_reg <= {line, shift_reg[7:1]};
                    bit_reg   <= bit_reg + 1'b1;
                    if (bit_reg == 3'd7) state_reg <= STOP;
                end
            end
            STOP: begin
                if (!cnt_zero_reg) begin
                    cnt_reg <= cnt_reg - 1'b1;
                    cnt_zero_reg <= cnt_reg == CNT_W'(1);
                end else if (!line) begin
                    frame_error_reg <= 1'b1;
                    state_reg       <= WAIT_HIGH;
                end else begin
                    state_reg <= IDLE;
                    if (valid_reg && !m_axis_tready) begin
                        overrun_reg <= 1'b1;
                    end else begin
                        data_reg  <= shift_reg;
                        valid_reg <= 1'b1;
                    end
                end
            end
            WAIT_HIGH: begin
                if (line) state_reg <= IDLE;
            end
            default: state_reg <= IDLE;
        endcase

        if (rst) begin
            sync_reg        <= 2'b11;
            state_reg       <= IDLE;
            valid_reg       <= 1'b0;
            overrun_reg     <= 1'b0;
            frame_error_reg <= 1'b0;
        end
    end

endmodule

`resetall
