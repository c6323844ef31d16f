// threshold_search: the multi-threshold activation of LANES values by binary search over sorted
// thresholds, one pipelined stage per result bit. The alternative to hw/threshold_count.sv for
// many thresholds (activations of 5 bits and more): threshold_count compares a value with all
// NUM_T thresholds at once, from one memory word of LANES*NUM_T thresholds, which for 8-bit
// activations is thousands of comparators and a very wide, mostly-empty block-RAM word; here each
// lane makes L = clog2(NUM_T + 1) comparisons, one per stage, from narrow deep memories.
// Used by hw/thresholding.sv and the threshold stage of hw/mac_pipeline.sv (mvau, vvau) with
// THR_SEARCH.
//
// Function  : count[l] = (number of thresholds t of lane l's channel with t <= value[l]) +
//             OUT_OFFSET, in OUT_W bits (wrapping; two's complement when OUT_OFFSET < 0), the
//             count of hw/threshold_count.sv, provided the channel's thresholds are
//             non-decreasing, t_0 <= t_1 <= ... <= t_{NUM_T-1} (equal ones allowed). A channel
//             is (fold, lane): fold selects one of NF channel groups. value is unsigned, two's
//             complement or (IN_BIPOLAR) bipolar, one bit, 0 meaning -1 and 1 meaning +1; value
//             and thresholds (THR_W-bit two's complement) are compared as signed numbers of CMP_W
//             bits, wide enough for both. Lane l's value is value[l*IN_W +: IN_W], its count
//             count[l*OUT_W +: OUT_W]; out_tag is the in_tag of the same values.
// Search    : the count c is an L-bit number, found from its high bit down. Sorted, c >= m holds
//             exactly when t_{m-1} <= x. Stage k (0 .. L-1) knows the k high bits p of c; it reads
//             threshold (2p+1)*2^(L-1-k) - 1, the one that decides whether c >= (2p+1)*2^(L-1-k),
//             and appends the comparison's result as the next bit. An index of NUM_T or more stands
//             for +infinity (the comparison is false): decided from p and the constants, beside
//             the read, so the memories hold no flag.
// Memories  : per stage k and lane l its own NF * 2^k THR_W-bit words, from the file
//             $sformatf("%s_s%0d_l%0d.mem", PREFIX, k, l); word fold*2^k + p holds threshold
//             (2p+1)*2^(L-1-k) - 1 of channel (fold, l) (0 where that index is NUM_T or more), as
//             written by qnnflow.flows.codegen.memfiles.threshold_search_words. The address is
//             the fold and p, registered again by each bank: no logic before the read. A memory
//             deeper than one row of block RAMs is split into banks of one row's words (bank_depth
//             below: of the block shape that holds it in the fewest blocks, e.g. 2048 for 3072
//             words of 9 bits, the last bank the rest), array and file each,
//             $sformatf("%s_s%0d_l%0d_b%0d.mem", PREFIX, k, l, b) holding words b*BANK ..:
//             Yosys would tile one deep array in rows of blocks with a multiplexer between their
//             reads and the register after them, which then could not be a block RAM's output
//             register. Here every bank's read is registered on its own and the bank chosen after.
// Structure : each stage is six registers deep. The blocks of a deep memory lie in columns
//             across the chip, and the routes to and from them take most of a cycle (on the 85F up
//             to 4.7 ns each way; with the comparator in the same cycle as either, 96 MHz), so each
//             has a cycle of its own: every bank's own copy of the address, which the placer puts
//             by its blocks; the synchronous read (a block RAM's read register); the read
//             registered again with no logic between (flows/implement/outreg.py moves that register
//             into the block RAM's output register: an ECP5 DP16KD read without it takes 5.6 ns);
//             a third time, in the fabric by the comparator; the comparison of every bank's
//             threshold, registered; then the bank's result chosen, registered as the next stage's
//             address bit. The value, fold, p and tag travel beside.
// Latency   : LATENCY = 6 * L = 6 * clog2(NUM_T + 1) cycles from value / fold / in_tag to count /
//             out_tag: NUM_T = 1: 6; 2..3: 12; 4..7: 18; 8..15: 24; 16..31: 30; 32..63: 36;
//             64..127: 42; 128..255: 48.
// Throughput: a value enters every cycle; the pipeline never stops (users count credits:
//             hw/credit_queue.sv), as hw/threshold_count.sv.
//
// Parameters:
//   LANES       values compared side by side, each with its own thresholds and memories
//   NUM_T       thresholds per channel (>= 1)
//   NF          channel groups (folds): the words of stage 0's memories (>= 1)
//   IN_W        value width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1, +1} (IN_W = 1)
//   THR_W       threshold width (two's complement)
//   OUT_W       count width
//   OUT_OFFSET  signed offset added to the count
//   TAG_W       width of the tag that travels with the values (cleared by rst)
//   PREFIX      the memory files' common beginning (see Memories)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module threshold_search #(
    parameter int LANES      = 1,
    parameter int NUM_T      = 255,
    parameter int NF         = 1,
    parameter int IN_W       = 8,
    parameter bit IN_SIGNED  = 1'b0,
    parameter bit IN_BIPOLAR = 1'b0,
    parameter int THR_W      = 9,
    parameter int OUT_W      = 8,
    parameter int OUT_OFFSET = 0,
    parameter int TAG_W      = 1,
    parameter     PREFIX     = "thresholds",
    localparam int NF_W      = NF > 1 ? $clog2(NF) : 1
) (
    input  wire logic                   clk,
    input  wire logic                   rst,

    input  wire logic [LANES*IN_W-1:0]  value,
    input  wire logic [NF_W-1:0]        fold,
    input  wire logic [TAG_W-1:0]       in_tag,

    output wire logic [LANES*OUT_W-1:0] count,
    output wire logic [TAG_W-1:0]       out_tag
);

    if (NUM_T < 1) begin : g_bad_num_t
        $fatal(1, "%m: NUM_T (%0d) must be at least 1", NUM_T);
    end
    if (NF < 1) begin : g_bad_nf
        $fatal(1, "%m: NF (%0d) must be at least 1", NF);
    end
    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (LANES < 1 || IN_W < 1 || THR_W < 1 || OUT_W < 1 || TAG_W < 1) begin : g_bad_width
        $fatal(1, "%m: LANES (%0d), IN_W (%0d), THR_W (%0d), OUT_W (%0d) and TAG_W (%0d) must be at least 1",
               LANES, IN_W, THR_W, OUT_W, TAG_W);
    end

    localparam int L = $clog2(NUM_T + 1);  // result bits = stages (the latency is 6 * L)
    // an unsigned value needs a sign bit; a bipolar one two bits for -1 and +1
    localparam int VAL_W = IN_SIGNED && !IN_BIPOLAR ? IN_W : IN_W + 1;
    localparam int CMP_W = THR_W > VAL_W ? THR_W : VAL_W;

    // The words of one bank of a stage's memory: as deep as one row of 18 Kb block RAMs
    // (DP16KD on ECP5, RAMB18 on xc7: 16384 x 1 .. 512 x 36) side by side, the shape that holds
    // DEPTH words of WIDTH bits in the fewest blocks (of equal ones the deepest); DEPTH itself when
    // that is no deeper. A memory deeper than one row would otherwise be rows of blocks with a
    // multiplexer between their reads and the register after them.
    function automatic int bank_depth(input int depth, input int width);
        int best_d, best_n, d, w, n;
        best_d = 0;
        best_n = 0;
        for (int s = 0; s < 6; s++) begin
            d = 16384 >> s;
            w = s == 0 ? 1 : s == 1 ? 2 : s == 2 ? 4 : s == 3 ? 9 : s == 4 ? 18 : 36;
            n = (depth + d - 1) / d * ((width + w - 1) / w);
            if (best_n == 0 || n < best_n) begin
                best_n = n;
                best_d = d;
            end
        end
        bank_depth = depth <= best_d ? depth : best_d;
    endfunction

    // a lane's value as the signed number it compares as
    function automatic logic signed [CMP_W-1:0] number(input logic [IN_W-1:0] v);
        if (IN_BIPOLAR) number = v[0] ? CMP_W'(1) : -CMP_W'(1);
        else if (IN_SIGNED) number = CMP_W'($signed(v));
        else number = CMP_W'(v);
    endfunction

    // Stage k's registers: each bank's copy of the address (a), the read (rd), its second and third
    // register (thr, thr_d), the comparisons (le_e) and beside them the value, fold, the bits found
    // (p: lane l's at [l*L +: L], the k found so far in its low bits) and the tag, in six steps a,
    // b, c, d, e, q; stage k+1 starts from stage k's q registers.
    for (genvar k = 0; k < L; k++) begin : g_stage
        localparam int DEPTH = NF << k;
        localparam int AW    = DEPTH > 1 ? $clog2(DEPTH) : 1;
        localparam int STEP  = 1 << (L - 1 - k);  // candidates of stage k: multiples of STEP

        // the stage's input: the module's ports, or the stage before's last registers
        wire logic [LANES*IN_W-1:0] x_in;
        wire logic [NF_W-1:0]       f_in;
        wire logic [LANES*L-1:0]    p_in;
        wire logic [TAG_W-1:0]      tag_in;
        if (k == 0) begin : g_from_ports
            assign x_in   = value;
            assign f_in   = fold;
            assign p_in   = '0;
            assign tag_in = in_tag;
        end else begin : g_from_stage
            assign x_in   = g_stage[k-1].g_pass.x_q;
            assign f_in   = g_stage[k-1].g_pass.f_q;
            assign p_in   = g_stage[k-1].p_q;
            assign tag_in = g_stage[k-1].tag_q;
        end

        logic [LANES*IN_W-1:0] x_a, x_b, x_c, x_d;
        logic [NF_W-1:0]       f_a, f_b, f_c, f_d;
        logic [LANES*L-1:0]    p_a, p_b, p_c, p_d, p_e, p_q;
        logic [TAG_W-1:0]      tag_a, tag_b, tag_c, tag_d, tag_e, tag_q;
        logic [LANES-1:0]      ge;

        // a deep memory is split into banks of whole block-RAM rows (see Memories): each bank's
        // address and read registered on their own, the bank chosen after the read's third register
        localparam int BANK = bank_depth(DEPTH, THR_W);
        localparam int NB   = (DEPTH + BANK - 1) / BANK;
        localparam int BW   = BANK > 1 ? $clog2(BANK) : 1;  // the address within a bank
        localparam int SW   = NB > 1 ? $clog2(NB) : 1;      // the bank

        for (genvar l = 0; l < LANES; l++) begin : g_lane
            // the address: fold and the bits found, wires of the stage before's registers
            wire logic [AW-1:0] addr;
            logic               beyond;  // the candidate's index is NUM_T or more: +infinity
            if (k == 0) begin : g_addr0
                assign addr   = AW'(f_in);
                assign beyond = 1'b0;  // index 2^(L-1) - 1 < NUM_T
            end else begin : g_addr
                wire logic [k-1:0] p_lane = p_d[l*L +: k];
                assign addr = AW'({f_in, p_in[l*L +: k]});
                // from the bits registered beside the read: logic on registers, not on the read
                always_ff @(posedge clk) beyond <= (2 * int'(p_lane) + 1) * STEP - 1 >= NUM_T;
            end

            logic [NB*THR_W-1:0] thr, thr_d;  // every bank's read, registered twice and three times
            for (genvar b = 0; b < NB; b++) begin : g_bank
                localparam int WORDS = DEPTH - b * BANK < BANK ? DEPTH - b * BANK : BANK;
                localparam int OW    = WORDS > 1 ? $clog2(WORDS) : 1;
                logic [THR_W-1:0] mem [WORDS];
                if (NB == 1) begin : g_file
                    initial $readmemh($sformatf("%s_s%0d_l%0d.mem", PREFIX, k, l), mem);
                end else begin : g_bank_file
                    initial $readmemh($sformatf("%s_s%0d_l%0d_b%0d.mem", PREFIX, k, l, b), mem);
                end

                // the bank's own copy of the address, which the placer can put by its blocks
                // (the bank's words lie below DEPTH: a wider offset only ever reads those)
                // verilator lint_off UNUSEDSIGNAL
                logic [BW-1:0]    offset;
                // verilator lint_on UNUSEDSIGNAL
                logic [THR_W-1:0] rd;
                always_ff @(posedge clk) begin
                    offset <= BW'(addr);
                    rd     <= mem[offset[OW-1:0]];
                    thr[b*THR_W +: THR_W]   <= rd;  // nothing between the read and this register
                    thr_d[b*THR_W +: THR_W] <= thr[b*THR_W +: THR_W];  // the long way from the block
                end
            end

            // every bank's threshold compared and the result registered, the bank's result chosen
            // in the next cycle: a multiplexer of words in front of the carry chain, or of the
            // results behind it, were the critical paths (112 MHz, 141 MHz)
            // t <= x as the sign of x - t one bit wider (no overflow): one carry chain, its last
            // sum bit the result, no logic after it
            logic [NB-1:0] le, le_e;
            for (genvar b = 0; b < NB; b++) begin : g_compare
                wire logic signed [CMP_W:0] diff = (CMP_W+1)'(number(x_d[l*IN_W +: IN_W]))
                                                 - (CMP_W+1)'($signed(thr_d[b*THR_W +: THR_W]));
                assign le[b] = !diff[CMP_W];
            end
            always_ff @(posedge clk) le_e <= le;
            if (NB > 1) begin : g_select  // the bank, registered beside the address and the read's registers
                logic [SW-1:0] sel_a, sel_b, sel_c, sel_d, sel_e;
                always_ff @(posedge clk) begin
                    sel_a <= SW'(addr >> BW);
                    sel_b <= sel_a;
                    sel_c <= sel_b;
                    sel_d <= sel_c;
                    sel_e <= sel_d;
                end
                assign ge[l] = !beyond && le_e[sel_e];
            end else begin : g_one
                assign ge[l] = !beyond && le_e[0];
            end
        end

        always_ff @(posedge clk) begin
            {x_a, f_a, p_a, tag_a} <= {x_in, f_in, p_in, tag_in};
            {x_b, f_b, p_b, tag_b} <= {x_a, f_a, p_a, tag_a};
            {x_c, f_c, p_c, tag_c} <= {x_b, f_b, p_b, tag_b};
            {x_d, f_d, p_d, tag_d} <= {x_c, f_c, p_c, tag_c};
            {p_e, tag_e} <= {p_d, tag_d};
            for (int l = 0; l < LANES; l++) begin
                p_q[l*L +: L] <= (p_e[l*L +: L] << 1) | L'(ge[l]);  // the bit found appended
            end
            tag_q <= tag_e;
            if (rst) begin
                tag_a <= '0;
                tag_b <= '0;
                tag_c <= '0;
                tag_d <= '0;
                tag_e <= '0;
                tag_q <= '0;
            end
        end

        // value and fold go on to the next stage (the last one needs neither)
        if (k < L - 1) begin : g_pass
            logic [LANES*IN_W-1:0] x_e, x_q;
            logic [NF_W-1:0]       f_e, f_q;
            always_ff @(posedge clk) begin
                {x_e, f_e} <= {x_d, f_d};
                {x_q, f_q} <= {x_e, f_e};
            end
        end else begin : g_last
            // verilator lint_off UNUSEDSIGNAL
            wire logic [NF_W-1:0] unused_fold = f_d;
            // verilator lint_on UNUSEDSIGNAL
        end
    end

    if (L > 0) begin : g_out  // (NUM_T < 1 stops elaboration above)
        for (genvar l = 0; l < LANES; l++) begin : g_offset
            assign count[l*OUT_W +: OUT_W] = OUT_W'(g_stage[L-1].p_q[l*L +: L]) + OUT_W'(OUT_OFFSET);
        end
        assign out_tag = g_stage[L-1].tag_q;
    end

endmodule

`resetall
