// TEST ONLY: standin_accelerator, a stand-in for the generated accelerator, so the board top and the implementation
// flow can be tested without a trained model. It is not part of qnnflow's RTL library.
//
// Function: for each frame of IN_BEATS input beats (tlast on the last), OUT_BEATS output beats
// with value (sum of the frame's input beats + k) mod 2**OUT_W for beat k (tlast on the last).
// Input one beat per cycle; output after the frame's last beat; the input stalls meanwhile.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module standin_accelerator #(
    parameter int IN_W      = 8,
    parameter int IN_BEATS  = 16,
    parameter int OUT_W     = 4,
    parameter int OUT_BEATS = 1
) (
    input  wire logic             clk,
    input  wire logic             rst,

    input  wire logic [IN_W-1:0]  s_axis_tdata,
    input  wire logic             s_axis_tvalid,
    output wire logic             s_axis_tready,
    input  wire logic             s_axis_tlast,

    output wire logic [OUT_W-1:0] m_axis_tdata,
    output wire logic             m_axis_tvalid,
    input  wire logic             m_axis_tready,
    output wire logic             m_axis_tlast
);

    localparam int OCW = OUT_BEATS > 1 ? $clog2(OUT_BEATS) : 1;

    logic [OUT_W-1:0] sum_reg;
    logic [OUT_W-1:0] out_reg;
    logic             out_valid_reg;
    logic [OCW-1:0]   out_cnt_reg;

    assign s_axis_tready = !out_valid_reg;
    assign m_axis_tdata  = out_reg;
    assign m_axis_tvalid = out_valid_reg;
    assign m_axis_tlast  = out_cnt_reg == OCW'(OUT_BEATS - 1);

    wire [OUT_W-1:0] sum_next = sum_reg + OUT_W'(s_axis_tdata);

    always_ff @(posedge clk) begin
        if (s_axis_tvalid && s_axis_tready) begin
            sum_reg <= s_axis_tlast ? '0 : sum_next;
            if (s_axis_tlast) begin
                out_reg       <= sum_next;
                out_valid_reg <= 1'b1;
                out_cnt_reg   <= '0;
            end
        end
        if (out_valid_reg && m_axis_tready) begin
            out_reg     <= out_reg + 1'b1;
            out_cnt_reg <= out_cnt_reg + 1'b1;
            if (m_axis_tlast) out_valid_reg <= 1'b0;
        end
        if (rst) begin
            sum_reg       <= '0;
            out_valid_reg <= 1'b0;
            out_cnt_reg   <= '0;
        end
    end

endmodule

`resetall
