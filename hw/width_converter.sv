// width_converter: changes the beat width of a stream by an integer ratio, keeping element order.
//
// Function  : the stream's bits are unchanged in order; the first bits of the stream sit in the
//             LSBs of a beat (element 0 in the LSBs) on both sides.
//             Widening (OUT_W = R*IN_W): R input beats make one output beat, the first of them in
//             the LSBs. Narrowing (IN_W = R*OUT_W): one input beat makes R output beats, LSBs first.
//             Equal widths: a register slice (skid_buffer).
// Latency   : widening, 1 cycle after the last input beat of an output word; narrowing, 1 cycle
//             from an input beat to its first output beat.
// Throughput: full: one input beat per cycle when widening, one output beat per cycle when
//             narrowing, without bubbles as long as neither side stalls.
// Ready     : s_axis_tready depends only on registers; no combinational path from m_axis_tready.
//             m_axis_* are registers.
//
// Parameters:
//   IN_W    input tdata width in bits
//   OUT_W   output tdata width in bits; one of IN_W, OUT_W must be a multiple of the other

`resetall
`timescale 1ns / 1ps
`default_nettype none

module width_converter #(
    parameter int IN_W  = 8,
    parameter int OUT_W = 32
) (
    input  wire logic             clk,
    input  wire logic             rst,

    input  wire logic [IN_W-1:0]  s_axis_tdata,
    input  wire logic             s_axis_tvalid,
    output wire logic             s_axis_tready,

    output wire logic [OUT_W-1:0] m_axis_tdata,
    output wire logic             m_axis_tvalid,
    input  wire logic             m_axis_tready
);

    if (IN_W < 1 || OUT_W < 1) begin : g_bad_width
        $fatal(1, "%m: IN_W (%0d) and OUT_W (%0d) must be at least 1", IN_W, OUT_W);
    end
    if (OUT_W % IN_W != 0 && IN_W % OUT_W != 0) begin : g_bad_ratio
        $fatal(1, "%m: one of IN_W (%0d) and OUT_W (%0d) must be a multiple of the other", IN_W, OUT_W);
    end

    if (IN_W == OUT_W) begin : g_same
        skid_buffer #(
            .DATA_W(IN_W)
        ) u_slice (
            .clk(clk),
            .rst(rst),
            .s_axis_tdata(s_axis_tdata),
            .s_axis_tvalid(s_axis_tvalid),
            .s_axis_tready(s_axis_tready),
            .m_axis_tdata(m_axis_tdata),
            .m_axis_tvalid(m_axis_tvalid),
            .m_axis_tready(m_axis_tready)
        );

    end else if (OUT_W > IN_W) begin : g_widen
        localparam int R = OUT_W / IN_W;
        localparam int CNT_W = R > 1 ? $clog2(R) : 1;
        localparam logic [CNT_W-1:0] LAST = CNT_W'(R - 1);

        logic [OUT_W-IN_W-1:0] acc_reg;   // the first R-1 beats of the word being collected
        logic [CNT_W-1:0]      count_reg; // beats collected so far
        logic [OUT_W-1:0]      out_data_reg;
        logic                  out_valid_reg;

        // The last beat of a word needs the output register free. Checking the register rather
        // than m_axis_tready keeps ready paths apart; without stalls the output register is
        // always empty again long before (R >= 2).
        assign s_axis_tready = !(count_reg == LAST && out_valid_reg);
        assign m_axis_tdata  = out_data_reg;
        assign m_axis_tvalid = out_valid_reg;

        wire in_fire = s_axis_tvalid && s_axis_tready;
        wire [OUT_W-1:0] joined = {s_axis_tdata, acc_reg};

        always_ff @(posedge clk) begin
            if (out_valid_reg && m_axis_tready) out_valid_reg <= 1'b0;
            if (in_fire) begin
                if (count_reg == LAST) begin
                    out_data_reg  <= joined;
                    out_valid_reg <= 1'b1;
                    count_reg     <= '0;
                end else begin
                    // shift right: after R-1 beats the first beat is in the LSBs
                    acc_reg <= joined[OUT_W-1:IN_W];
                    count_reg <= count_reg + 1'b1;
                end
            end
            if (rst) begin
                count_reg     <= '0;
                out_valid_reg <= 1'b0;
            end
        end

    end else begin : g_narrow
        localparam int R = IN_W / OUT_W;
        localparam int CNT_W = R > 1 ? $clog2(R) : 1;
        localparam logic [CNT_W-1:0] LAST = CNT_W'(R - 1);

        // cur: the word being sent, slice by slice; next: the word after it, taken while cur is
        // being sent so that words follow each other without a bubble
        logic [IN_W-1:0]  cur_reg, next_reg;
        logic             cur_valid_reg, next_valid_reg;
        logic [CNT_W-1:0] slice_reg;

        assign s_axis_tready = !next_valid_reg;
        assign m_axis_tdata  = cur_reg[OUT_W-1:0];
        assign m_axis_tvalid = cur_valid_reg;

        wire in_fire  = s_axis_tvalid && !next_valid_reg;
        wire out_fire = cur_valid_reg && m_axis_tready;
        wire cur_done = !cur_valid_reg || (out_fire && slice_reg == LAST);

        always_ff @(posedge clk) begin
            if (out_fire && slice_reg != LAST) begin
                cur_reg   <= cur_reg >> OUT_W;
                slice_reg <= slice_reg + 1'b1;
            end
            if (cur_done) begin
                slice_reg <= '0;
                if (next_valid_reg) begin
                    cur_reg        <= next_reg;
                    cur_valid_reg  <= 1'b1;
                    next_valid_reg <= 1'b0;
                end else begin
                    cur_reg       <= s_axis_tdata;
                    cur_valid_reg <= in_fire;
                end
            end else if (in_fire) begin
                next_reg       <= s_axis_tdata;
                next_valid_reg <= 1'b1;
            end
            if (rst) begin
                cur_valid_reg  <= 1'b0;
                next_valid_reg <= 1'b0;
                slice_reg      <= '0;
            end
        end
    end

endmodule

`resetall
