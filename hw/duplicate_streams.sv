// duplicate_streams: copies one stream to NUM_OUT output streams (a residual-block fork).
//
// Function  : every input beat appears once on each output, in order. Output i is lane i of the
//             packed ports: m_axis_tdata[i*DATA_W +: DATA_W], m_axis_tvalid[i], m_axis_tready[i].
// Latency   : 1 cycle.
// Throughput: one beat per cycle; an output that stalls holds the others back by at most the
//             two beats of its register slice.
// Ready     : each output has its own register slice (skid_buffer); s_axis_tready is the AND of
//             their registered readies, so there is no combinational path from any m_axis_tready.
//
// Parameters:
//   DATA_W   width of tdata in bits
//   NUM_OUT  number of output streams (>= 2)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module duplicate_streams #(
    parameter int DATA_W  = 8,
    parameter int NUM_OUT = 2
) (
    input  wire logic                      clk,
    input  wire logic                      rst,

    input  wire logic [DATA_W-1:0]         s_axis_tdata,
    input  wire logic                      s_axis_tvalid,
    output wire logic                      s_axis_tready,

    output wire logic [NUM_OUT*DATA_W-1:0] m_axis_tdata,
    output wire logic [NUM_OUT-1:0]        m_axis_tvalid,
    input  wire logic [NUM_OUT-1:0]        m_axis_tready
);

    if (DATA_W < 1) begin : g_bad_width
        $fatal(1, "%m: DATA_W (%0d) must be at least 1", DATA_W);
    end
    if (NUM_OUT < 2) begin : g_bad_count
        $fatal(1, "%m: NUM_OUT (%0d) must be at least 2", NUM_OUT);
    end

    logic [NUM_OUT-1:0] lane_ready;

    // a beat is taken only when every output slice can take it, so all copies move together
    assign s_axis_tready = &lane_ready;

    for (genvar i = 0; i < NUM_OUT; i++) begin : g_lane
        skid_buffer #(
            .DATA_W(DATA_W)
        ) u_slice (
            .clk(clk),
            .rst(rst),
            .s_axis_tdata(s_axis_tdata),
            .s_axis_tvalid(s_axis_tvalid && s_axis_tready),
            .s_axis_tready(lane_ready[i]),
            .m_axis_tdata(m_axis_tdata[i*DATA_W +: DATA_W]),
            .m_axis_tvalid(m_axis_tvalid[i]),
            .m_axis_tready(m_axis_tready[i])
        );
    end

endmodule

`resetall
