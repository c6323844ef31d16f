// label_select: index of the largest of NUM values (top-1), ties to the lowest index.
//
// Function  : a frame is NUM values, PE per beat (value i of the frame is element i mod PE of
//             beat i / PE, element e at bits [e*ELEM_W +: ELEM_W]); the output is one beat per
//             frame holding the index of the largest value, the lowest such index on ties
//             (numpy.argmax), unsigned in OUT_W bits. Values are two's complement if SIGNED.
// Latency   : 1 cycle from the last input beat of a frame to the output beat.
// Throughput: one input beat per cycle, so NUM/PE cycles per frame.
// Ready     : s_axis_tready is the registered ready of the output slice (skid_buffer); no
//             combinational path from m_axis_tready.
//
// Parameters:
//   NUM     values per frame (>= 1)
//   PE      values per beat; must divide NUM
//   ELEM_W  value width in bits
//   SIGNED  1: two's complement values; 0: unsigned
//   OUT_W   index width; 2**OUT_W must be at least NUM

`resetall
`timescale 1ns / 1ps
`default_nettype none

module label_select #(
    parameter int NUM    = 10,
    parameter int PE     = 1,
    parameter int ELEM_W = 8,
    parameter bit SIGNED = 1'b1,
    parameter int OUT_W  = 4
) (
    input  wire logic                 clk,
    input  wire logic                 rst,

    input  wire logic [PE*ELEM_W-1:0] s_axis_tdata,
    input  wire logic                 s_axis_tvalid,
    output wire logic                 s_axis_tready,

    output wire logic [OUT_W-1:0]     m_axis_tdata,
    output wire logic                 m_axis_tvalid,
    input  wire logic                 m_axis_tready
);

    if (PE < 1 || NUM % PE != 0) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d) must divide NUM (%0d)", PE, NUM);
    end
    if (OUT_W < 1 || (1 << OUT_W) < NUM) begin : g_bad_out
        $fatal(1, "%m: OUT_W (%0d) bits cannot index NUM (%0d) values", OUT_W, NUM);
    end

    localparam logic [OUT_W-1:0] LAST_BASE = OUT_W'(NUM - PE);

    logic [OUT_W-1:0]  base_reg;       // index of element 0 of the current beat
    logic [ELEM_W-1:0] best_val_reg;   // best value of the frame's earlier beats
    logic [OUT_W-1:0]  best_idx_reg;
    logic              slice_ready;

    // best of this beat, then against the earlier beats; only a strictly larger value replaces
    // the best so far, so ties keep the lowest index
    logic [ELEM_W-1:0] beat_val, new_val;
    logic [OUT_W-1:0]  beat_idx, new_idx;

    function automatic logic greater(input logic [ELEM_W-1:0] a, input logic [ELEM_W-1:0] b);
        greater = SIGNED ? ($signed(a) > $signed(b)) : (a > b);
    endfunction

    always_comb begin
        beat_val = s_axis_tdata[ELEM_W-1:0];
        beat_idx = base_reg;
        for (int e = 1; e < PE; e++) begin
            if (greater(s_axis_tdata[e*ELEM_W +: ELEM_W], beat_val)) begin
                beat_val = s_axis_tdata[e*ELEM_W +: ELEM_W];
                beat_idx = base_reg + OUT_W'(e);
            end
        end
        new_val = beat_val;
        new_idx = beat_idx;
        if (base_reg != '0 && !greater(beat_val, best_val_reg)) begin
            new_val = best_val_reg;
            new_idx = best_idx_reg;
        end
    end

    wire in_fire = s_axis_tvalid && slice_ready;
    wire last    = base_reg == LAST_BASE;

    always_ff @(posedge clk) begin
        if (in_fire) begin
            best_val_reg <= new_val;
            best_idx_reg <= new_idx;
            base_reg     <= last ? '0 : base_reg + OUT_W'(PE);
        end
        if (rst) base_reg <= '0;
    end

    assign s_axis_tready = slice_ready;

    skid_buffer #(
        .DATA_W(OUT_W)
    ) u_out (
        .clk(clk),
        .rst(rst),
        .s_axis_tdata(new_idx),
        .s_axis_tvalid(s_axis_tvalid && last),
        .s_axis_tready(slice_ready),
        .m_axis_tdata(m_axis_tdata),
        .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
