// skid_buffer: register slice that cuts every path of a valid/ready stream.
//
// Function  : m_axis carries the s_axis beats unchanged and in order.
// Latency   : 1 cycle from an accepted input beat to its output beat.
// Throughput: one beat per cycle, also while the output stalls and resumes.
// Ready     : s_axis_tready is a register (no combinational path from m_axis_tready); m_axis_*
//             are registers. While the output stalls, one extra beat is held in the skid
//             register, so the buffer holds up to two beats.
//
// Parameters:
//   DATA_W  width of tdata in bits (>= 1)
//
// Other modules put one of these in front of their output so that their own input ready does
// not depend on their output ready.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module skid_buffer #(
    parameter int DATA_W = 8
) (
    input  wire logic              clk,
    input  wire logic              rst,

    input  wire logic [DATA_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,
    output wire logic              s_axis_tready,

    output wire logic [DATA_W-1:0] m_axis_tdata,
    output wire logic              m_axis_tvalid,
    input  wire logic              m_axis_tready
);

    initial begin
        if (DATA_W < 1) $fatal(1, "%m: DATA_W (%0d) must be at least 1", DATA_W);
    end

    logic [DATA_W-1:0] out_data_reg;
    logic              out_valid_reg;
    logic [DATA_W-1:0] skid_data_reg;
    logic              skid_valid_reg;

    assign s_axis_tready = !skid_valid_reg;
    assign m_axis_tdata  = out_data_reg;
    assign m_axis_tvalid = out_valid_reg;

    wire in_fire  = s_axis_tvalid && !skid_valid_reg;
    wire out_free = !out_valid_reg || m_axis_tready;  // the output register may load this cycle

    always_ff @(posedge clk) begin
        if (out_free) begin
            // the skid beat is older than any input beat, so it goes first
            if (skid_valid_reg) begin
                out_data_reg   <= skid_data_reg;
                out_valid_reg  <= 1'b1;
                skid_valid_reg <= 1'b0;
            end else begin
                out_data_reg  <= s_axis_tdata;
                out_valid_reg <= in_fire;
            end
        end else if (in_fire) begin
            skid_valid_reg <= 1'b1;
        end
        // the skid register follows the input while it holds nothing: its enable is a register,
        // not the input's valid (a wide slice's enables were TFC-w1a1's critical path on ECP5: the
        // frame decoder's valid logic, then a 4.7 ns route to 392 flip-flops)
        if (!skid_valid_reg) skid_data_reg <= s_axis_tdata;

        if (rst) begin
            out_valid_reg  <= 1'b0;
            skid_valid_reg <= 1'b0;
        end
    end

endmodule

`resetall
