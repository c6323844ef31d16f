// add_streams: elementwise sum of two streams of PE elements per beat (a residual-block join).
//
// Function  : out[e] = a[e] + b[e] for each of the PE elements of a beat, in OUT_W bits
//             (two's complement if IN_SIGNED, else unsigned). Input k is lane k of the packed
//             ports: s_axis_tdata[k*PE*IN_W +: PE*IN_W], s_axis_tvalid[k], s_axis_tready[k];
//             element e of a beat at bits [e*W +: W].
// Latency   : 1 cycle.
// Throughput: one beat per cycle.
// Ready     : both inputs are taken together: s_axis_tready[k] = (the other input is valid) and
//             (the output slice can take a beat). The slice's ready is a register, so there is
//             no combinational path from m_axis_tready; there is one from s_axis_tvalid of one
//             input to s_axis_tready of the other.
//
// Parameters:
//   PE         elements per beat
//   IN_W       element width of both inputs in bits
//   IN_SIGNED  1: inputs are two's complement; 0: unsigned
//   OUT_W      element width of the sum; IN_W + 1 holds every sum

`resetall
`timescale 1ns / 1ps
`default_nettype none

module add_streams #(
    parameter int PE        = 1,
    parameter int IN_W      = 8,
    parameter bit IN_SIGNED = 1'b1,
    parameter int OUT_W     = IN_W + 1
) (
    input  wire logic                   clk,
    input  wire logic                   rst,

    input  wire logic [2*PE*IN_W-1:0]   s_axis_tdata,
    input  wire logic [1:0]             s_axis_tvalid,
    output wire logic [1:0]             s_axis_tready,

    output wire logic [PE*OUT_W-1:0]    m_axis_tdata,
    output wire logic                   m_axis_tvalid,
    input  wire logic                   m_axis_tready
);

    if (PE < 1 || IN_W < 1) begin : g_bad_size
        $fatal(1, "%m: PE (%0d) and IN_W (%0d) must be at least 1", PE, IN_W);
    end
    if (OUT_W < IN_W) begin : g_bad_out
        $fatal(1, "%m: OUT_W (%0d) must be at least IN_W (%0d)", OUT_W, IN_W);
    end

    logic [PE*OUT_W-1:0] sum;
    logic                slice_ready;

    always_comb begin
        for (int e = 0; e < PE; e++) begin
            logic [IN_W-1:0]  a, b;
            logic [OUT_W-1:0] a_ext, b_ext;  // the sum wraps modulo 2**OUT_W
            a = s_axis_tdata[e*IN_W +: IN_W];
            b = s_axis_tdata[(PE + e)*IN_W +: IN_W];
            a_ext = IN_SIGNED ? OUT_W'($signed(a)) : OUT_W'(a);
            b_ext = IN_SIGNED ? OUT_W'($signed(b)) : OUT_W'(b);
            sum[e*OUT_W +: OUT_W] = a_ext + b_ext;
        end
    end

    wire both = &s_axis_tvalid;
    assign s_axis_tready = {2{slice_ready}} & {s_axis_tvalid[0], s_axis_tvalid[1]};

    skid_buffer #(
        .DATA_W(PE*OUT_W)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(sum),
        .s_axis_tvalid(both),
        .s_axis_tready(slice_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
