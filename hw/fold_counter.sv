// fold_counter: the two nested fold counters of a MAC unit (hw/mvau.sv, hw/vvau.sv) and their
// linear position, with every position test a register.
//
// Function  : counts positions (outer, inner), inner fastest, INNER x OUTER of them, then wraps;
//             `addr` = outer*INNER + inner, the linear position (the weight word the position
//             reads). The flags inner_first (inner == 0), inner_last (inner == INNER-1),
//             outer_first (outer == 0) and outer_last (outer == OUTER-1) are registers, set from
//             compares beside the counters' adders, so a user's issue logic sees no compare.
//             hw/mvau.sv counts (fold, slice): INNER = SF, OUTER = NF; hw/vvau.sv counts
//             (window slice, channel fold): INNER = NF, OUTER = SF.
// Timing    : `step` moves to the next position at the clock edge; the outputs are registers.
//
// Parameters:
//   INNER, OUTER  positions of the inner (fastest) and outer counter, each at least 1

`resetall
`timescale 1ns / 1ps
`default_nettype none

module fold_counter #(
    parameter int INNER = 2,
    parameter int OUTER = 2,
    localparam int INNER_W = INNER > 1 ? $clog2(INNER) : 1,
    localparam int OUTER_W = OUTER > 1 ? $clog2(OUTER) : 1,
    localparam int ADDR_W  = INNER * OUTER > 1 ? $clog2(INNER * OUTER) : 1
) (
    input  wire logic               clk,
    input  wire logic               rst,
    input  wire logic               step,

    output      logic [INNER_W-1:0] inner,
    output      logic [OUTER_W-1:0] outer,
    output      logic [ADDR_W-1:0]  addr,
    output      logic               inner_first,
    output      logic               inner_last,
    output      logic               outer_first,
    output      logic               outer_last
);

    if (INNER < 1 || OUTER < 1) begin : g_bad_size
        $fatal(1, "%m: INNER (%0d) and OUTER (%0d) must be at least 1", INNER, OUTER);
    end

    always_ff @(posedge clk) begin
        if (step) begin
            inner       <= inner_last ? '0 : inner + 1'b1;
            inner_first <= inner_last;
            inner_last  <= inner_last ? INNER == 1 : inner == INNER_W'(INNER - 2);
            if (inner_last) begin
                outer       <= outer_last ? '0 : outer + 1'b1;
                outer_first <= outer_last;
                outer_last  <= outer_last ? OUTER == 1 : outer == OUTER_W'(OUTER - 2);
            end
            addr <= (inner_last && outer_last) ? '0 : addr + 1'b1;
        end
        if (rst) begin
            inner       <= '0;
            outer       <= '0;
            addr        <= '0;
            inner_first <= 1'b1;
            inner_last  <= INNER == 1;
            outer_first <= 1'b1;
            outer_last  <= OUTER == 1;
        end
    end

endmodule

`resetall
