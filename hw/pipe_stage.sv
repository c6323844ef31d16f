// pipe_stage: one optional register stage of a free-running pipeline, its data and a valid bit.
//
// Function  : STAGE = 1: q and q_valid are d and d_valid of the cycle before; q_valid is cleared
//             by rst, q is not (a data register needs no reset). STAGE = 0: q = d and
//             q_valid = d_valid, wires. A module registers a step where its parameters call for
//             it (hw/mac_pipeline.sv, hw/label_select.sv) without writing out both branches.
// Latency   : STAGE cycles.
// Throughput: one beat per cycle; no ready (the pipeline's users count credits).
//
// Parameters:
//   DATA_W  width of d and q in bits (>= 1)
//   STAGE   1: a register stage; 0: wires

`resetall
`timescale 1ns / 1ps
`default_nettype none

module pipe_stage #(
    parameter int DATA_W = 8,
    parameter bit STAGE  = 1'b1
) (
    input  wire logic              clk,
    input  wire logic              rst,

    input  wire logic [DATA_W-1:0] d,
    input  wire logic              d_valid,

    output wire logic [DATA_W-1:0] q,
    output wire logic              q_valid
);

    if (DATA_W < 1) begin : g_bad_width
        $fatal(1, "%m: DATA_W (%0d) must be at least 1", DATA_W);
    end

    if (STAGE) begin : g_reg
        logic [DATA_W-1:0] q_reg;
        logic              v_reg;
        always_ff @(posedge clk) begin
            q_reg <= d;
            v_reg <= d_valid;
            if (rst) v_reg <= 1'b0;
        end
        assign q       = q_reg;
        assign q_valid = v_reg;
    end else begin : g_wire
        // (no register: the clock and reset are not used)
        /* verilator lint_off UNUSEDSIGNAL */
        wire logic unused_clk_rst = clk ^ rst;
        /* verilator lint_on UNUSEDSIGNAL */
        assign q       = d;
        assign q_valid = d_valid;
    end

endmodule

`resetall
