// credit_queue: the output of a free-running pipeline: a FIFO that is never full when a beat
// arrives, because its user counts credits.
//
// Function  : m_axis carries the s_axis beats unchanged and in order (hw/fifo.sv, DEPTH beats).
//             A pipeline that cannot stop asserts `reserve` in the cycle it commits to a beat
//             (issues the work that will produce it) and commits only while `space` is high; the
//             beat arrives on s_axis any number of cycles later. At most DEPTH beats are reserved
//             and not yet taken from m_axis, so s_axis never meets a full queue and has no ready.
// Latency   : 2 cycles from s_axis to m_axis when the queue is empty (hw/fifo.sv).
// Throughput: one beat per cycle when DEPTH >= the pipeline's latency from `reserve` to s_axis,
//             plus 6 (the queue's 2, the credit's return in 2 cycles, the two credits `space`
//             keeps back).
// Ready     : `space` is a register, set from the count alone (see below); m_axis_* are
//             registers. The FIFO is LUT RAM sized, with one read stage.
//
// Parameters:
//   DATA_W  width of tdata in bits (>= 1)
//   DEPTH   beats the queue holds and credits it gives (>= 2)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module credit_queue #(
    parameter int DATA_W = 8,
    parameter int DEPTH  = 8
) (
    input  wire logic              clk,
    input  wire logic              rst,

    input  wire logic              reserve,
    output wire logic              space,

    input  wire logic [DATA_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,

    output wire logic [DATA_W-1:0] m_axis_tdata,
    output wire logic              m_axis_tvalid,
    input  wire logic              m_axis_tready
);

    localparam int RES_W = $clog2(DEPTH + 1);

    logic [RES_W-1:0] reserved_reg;  // reserved and not yet taken from m_axis (a cycle late): 0..DEPTH
    logic             space_reg;     // a reservation fits
    // A beat taken from m_axis returns its credit a cycle later, from a register: the consumer's
    // ready then meets one gate before a register here, not the count's carry chain. The
    // reservations are made where the pipeline starts, which in a unit spread over block RAM and
    // multipliers can be far from its output (the digits CNN w8a8: a 4 ns route between the two
    // halves of the count's update). A late credit only keeps the count high a cycle longer.
    logic             pop_reg;
    assign space = space_reg;

    // space_reg(t+1) = reserved_reg(t) <= DEPTH - 2: with at most one reservation a cycle the
    // count is then at most DEPTH - 1 at t+1, so a reservation at t+1 still fits. Neither this
    // cycle's reservation nor its pop enters the test, so `space` is one compare away from a
    // register; the price is two credits (DEPTH counts them).
    always_ff @(posedge clk) begin
        pop_reg      <= m_axis_tvalid && m_axis_tready;
        reserved_reg <= reserved_reg + RES_W'(reserve) - RES_W'(pop_reg);
        space_reg    <= reserved_reg <= RES_W'(DEPTH - 2);
        if (rst) begin
            pop_reg      <= 1'b0;
            reserved_reg <= '0;
            space_reg    <= 1'b1;
        end
    end

    logic ready;  // always high while the credits are kept; checked in simulation
    fifo #(
        .DATA_W(DATA_W), .DEPTH(DEPTH), .USE_RAM(1'b1), .OUT_REG(1'b0)
    ) u_fifo (
        .clk(clk), .rst(rst),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(ready),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

    // synthesis translate_off
    logic reset_seen;  // registers hold random values until the first reset
    initial reset_seen = 1'b0;
    always_ff @(posedge clk) begin
        if (rst) reset_seen <= 1'b1;
        else if (reset_seen && s_axis_tvalid && !ready) begin
            $error("%m: a beat arrived at a full queue (more than its credits)");
        end
    end
    // synthesis translate_on

endmodule

`resetall
