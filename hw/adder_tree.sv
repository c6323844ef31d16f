// adder_tree: LANES sums of N terms each, as a pipelined binary tree, with a tag that travels
// alongside (valid, flags, an index: whatever the user needs to meet the sum again).
//
// Function  : sum[l] = terms[l][0] + ... + terms[l][N-1] in OUT_W bits (two's complement when
//             SIGNED; wrapping, so any OUT_W that holds the true sum gives it exactly).
//             Lane l's term i is at terms[(l*N + i)*IN_W +: IN_W]; lane l's sum at
//             sum[l*OUT_W +: OUT_W]. out_tag is in_tag of the same terms.
// Structure : LEVELS = clog2(N) levels of pairwise adders; level k (1..LEVELS) adds values of
//             min(IN_W + k, OUT_W) bits, so the carry chains grow with the level and no wider.
//             A register follows level k when (k + PRE) is a multiple of LPS, and always after
//             the last level; with N = 1 the terms are registered once. PRE counts levels of logic
//             the user puts in front of the tree in the same cycle (products: 1), so that no
//             cycle holds more than LPS levels.
// Latency   : LATENCY = 1 when N = 1, else the number of k in 1..LEVELS with (k + PRE) % LPS == 0
//             or k == LEVELS. E.g. LPS = 2, PRE = 1: N <= 2: 1; N <= 8: 2; N <= 32: 3; N <= 128: 4.
//             The pipeline never stops: a term enters every cycle (no enable, no backpressure);
//             users keep their output from overflowing by counting credits (hw/mac_pipeline.sv).
//
// Parameters:
//   LANES    independent sums computed side by side (one tag for all)
//   N        terms per sum (>= 1)
//   IN_W     term width; SIGNED: terms and sums are two's complement, else unsigned
//   OUT_W    sum width
//   LPS      adder levels per pipeline stage (>= 1)
//   PRE      levels of logic in front of the tree in the cycle of its input (0 .. LPS-1)
//   TAG_W    width of the tag (>= 1); the whole tag is cleared by rst

`resetall
`timescale 1ns / 1ps
`default_nettype none

module adder_tree #(
    parameter int LANES  = 1,
    parameter int N      = 8,
    parameter int IN_W   = 4,
    parameter bit SIGNED = 1'b1,
    parameter int OUT_W  = 8,
    parameter int LPS    = 2,
    parameter int PRE    = 0,
    parameter int TAG_W  = 1
) (
    input  wire logic                     clk,
    input  wire logic                     rst,

    input  wire logic [LANES*N*IN_W-1:0]  terms,
    input  wire logic [TAG_W-1:0]         in_tag,

    output wire logic [LANES*OUT_W-1:0]   sum,
    output wire logic [TAG_W-1:0]         out_tag
);

    if (LANES < 1 || N < 1 || IN_W < 1 || OUT_W < 1 || TAG_W < 1) begin : g_bad_size
        $fatal(1, "%m: LANES (%0d), N (%0d), IN_W (%0d), OUT_W (%0d), TAG_W (%0d) must be at least 1",
               LANES, N, IN_W, OUT_W, TAG_W);
    end
    if (LPS < 1 || PRE < 0 || PRE >= LPS) begin : g_bad_lps
        $fatal(1, "%m: LPS (%0d) must be at least 1 and PRE (%0d) in 0..LPS-1", LPS, PRE);
    end

    localparam int LEVELS = N > 1 ? $clog2(N) : 0;

    // level k: CNT values of W bits per lane, registered or not; level 0 is the terms
    for (genvar k = 0; k <= LEVELS; k++) begin : g_level
        localparam int CNT = (N + (1 << k) - 1) >> k;
        localparam int W   = IN_W + k < OUT_W ? IN_W + k : OUT_W;
        localparam bit REG = k > 0 && (k == LEVELS || (k + PRE) % LPS == 0);

        logic [LANES*CNT*W-1:0] val;
        logic [TAG_W-1:0]       tag;

        if (k == 0) begin : g_terms
            if (W == IN_W) begin : g_same
                assign val = terms;
            end else begin : g_narrow  // OUT_W < IN_W: only the low OUT_W bits matter
                for (genvar i = 0; i < LANES * N; i++) begin : g_term
                    assign val[i*W +: W] = terms[i*IN_W +: W];
                end
            end
            assign tag = in_tag;
        end else begin : g_add
            localparam int PW   = IN_W + k - 1 < OUT_W ? IN_W + k - 1 : OUT_W;  // the level below
            localparam int PCNT = (N + (1 << (k - 1)) - 1) >> (k - 1);
            logic [LANES*CNT*W-1:0] add;
            for (genvar ln = 0; ln < LANES; ln++) begin : g_lane
                for (genvar i = 0; i < CNT; i++) begin : g_node
                    wire logic [PW-1:0] a = g_level[k-1].val[(ln*PCNT + 2*i)*PW +: PW];
                    logic [W-1:0] b;
                    if (2 * i + 1 < PCNT) begin : g_pair
                        assign b = SIGNED ? W'($signed(g_level[k-1].val[(ln*PCNT + 2*i + 1)*PW +: PW]))
                                          : W'(g_level[k-1].val[(ln*PCNT + 2*i + 1)*PW +: PW]);
                    end else begin : g_odd
                        assign b = '0;
                    end
                    assign add[(ln*CNT + i)*W +: W] = (SIGNED ? W'($signed(a)) : W'(a)) + b;
                end
            end
            if (REG) begin : g_reg
                logic [LANES*CNT*W-1:0] val_reg;
                logic [TAG_W-1:0]       tag_reg;
                always_ff @(posedge clk) begin
                    val_reg <= add;
                    tag_reg <= g_level[k-1].tag;
                    if (rst) tag_reg <= '0;
                end
                assign val = val_reg;
                assign tag = tag_reg;
            end else begin : g_wire
                assign val = add;
                assign tag = g_level[k-1].tag;
            end
        end
    end

    // the last level holds one value per lane (registered: REG is set for k == LEVELS)
    localparam int LW = IN_W + LEVELS < OUT_W ? IN_W + LEVELS : OUT_W;
    logic [LANES*LW-1:0] last_val;
    logic [TAG_W-1:0]    last_tag;
    if (LEVELS == 0) begin : g_out_reg  // N = 1: the terms registered once
        always_ff @(posedge clk) begin
            last_val <= g_level[0].val;
            last_tag <= g_level[0].tag;
            if (rst) last_tag <= '0;
        end
    end else begin : g_out_tree  // already registered
        assign last_val = g_level[LEVELS].val;
        assign last_tag = g_level[LEVELS].tag;
    end
    for (genvar ln = 0; ln < LANES; ln++) begin : g_out
        assign sum[ln*OUT_W +: OUT_W] = SIGNED ? OUT_W'($signed(last_val[ln*LW +: LW])) : OUT_W'(last_val[ln*LW +: LW]);
    end
    assign out_tag = last_tag;

endmodule

`resetall
