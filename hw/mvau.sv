// mvau: matrix-vector-activation unit, folded by PE rows and SIMD columns.
//
// Function  : for each input vector x (MW elements) the output vector (MH elements) is
//             acc[r] = sum_c x[c] * W[r][c], or with IN_BIPOLAR and W_BIPOLAR both set the
//             XNOR-popcount acc[r] = number of c where x[c] and W[r][c] have the same sign.
//             With NUM_T > 0 the output is the multi-threshold activation
//             out[r] = (number of thresholds t of row r with t <= acc[r]) + OUT_OFFSET
//             in OUT_W bits; with NUM_T = 0 it is acc[r] itself (OUT_W = ACC_W).
//             This is qnnflow.flows.ir.kernels.mvau.
// Streams   : an input beat is SIMD elements of x (beat j: elements j*SIMD .. +SIMD-1, element i
//             at bits [i*IN_W +: IN_W]); a vector is SF = MW/SIMD beats. An output beat is PE
//             elements (beat n: rows n*PE .. +PE-1); a vector gives NF = MH/PE beats.
//             Bipolar values are one bit, 0 meaning -1; signed values two's complement.
// Memories  : WEIGHT_FILE holds NF*SF words of PE*SIMD weights (word nf*SF+sf, element pe*SIMD+s
//             = W[nf*PE+pe][sf*SIMD+s]); THRESH_FILE holds NF words of PE*NUM_T thresholds of
//             ACC_W bits (word nf, element pe*NUM_T+t = threshold t of row nf*PE+pe), as written
//             by qnnflow.flows.codegen.memfiles. Both are read synchronously (block RAM friendly).
//             With THR_SEARCH the thresholds are instead in hw/threshold_search.sv's files, one per
//             search stage k and lane pe, THRESH_PREFIX_s<k>_l<pe>.mem (NF * 2^k words of ACC_W bits,
//             memfiles.threshold_search_words).
// Timing    : one SIMD slice of one PE fold per cycle: the first fold takes the input beats as
//             they come and keeps them in an SF-word buffer, the other NF-1 folds read them back,
//             so a vector takes NF*SF cycles and vectors follow back to back without a gap. (Not
//             banked, SF > 1: a word is written the cycle after its issue, from the issued slice's
//             register.)
//             Latency from the issue of a fold's last slice (for the first fold: the cycle its
//             last input beat is taken) to its output beat, queue empty: 1 + hw/mac_pipeline.sv's
//             LATENCY (1 + tree(SIMD) + 1 + [NUM_T > 0: 2 + [NUM_T > 3 or THR_BRAM: 1] +
//             tree(NUM_T), or with THR_SEARCH 6 * clog2(NUM_T + 1)] + 2, tree() the adder_tree
//             stages, one more when the products are registered, i.e. both operands wider than 2
//             bits and neither bipolar): e.g. 9 for SIMD = 1 with 3 thresholds, 11
//             for SIMD = 9 or 32 (2-bit operands).
//             The input slice and its weights are registered in the fabric before the dot
//             products, so neither a block-RAM read (the weight memory, an upstream FIFO) nor the
//             input-buffer bypass shares a clock cycle with the adder tree.
//             With W_BANK_D > 0: 1 cycle more, one more with NF > 1 (the bypass register), and
//             with more than four banks one more per 4:1 level of their selection but the last:
//             1 + [NF > 1] + D_SEL, D_SEL = ceil(clog2(banks) / 2) - 1 (see W_BANK_D).
//             qnnflow.flows.compile.latency models the unit with this figure.
// Ready     : the pipeline stops as a whole only when its result cannot enter the output slice
//             (skid_buffer), whose ready is a register; s_axis_tready depends on registers only,
//             with no combinational path from m_axis_tready.
//
// Parameters:
//   MW, MH       matrix columns (input vector length) and rows (output vector length)
//   PE, SIMD     rows and columns processed per cycle; PE must divide MH, SIMD must divide MW
//   IN_W         input element width; IN_SIGNED: two's complement; IN_BIPOLAR: {-1,+1} (IN_W = 1)
//   W_W          weight width; W_SIGNED: two's complement (ternary is W_W = 2 signed holding
//                -1/0/+1); W_BIPOLAR: {-1,+1} (W_W = 1)
//   ACC_W        accumulator width (signed); qnnflow.flows.ir.kernels.accumulator_width gives it
//   NUM_T        thresholds per row; 0 for no activation
//   OUT_W        output element width (= ACC_W when NUM_T = 0)
//   OUT_OFFSET   signed offset added to the threshold count
//   WEIGHT_FILE, THRESH_FILE  $readmemh files (THRESH_FILE unused when NUM_T = 0 or with THR_SEARCH)
//   W_BANK_D     0: the weights are one memory, read into a register that mac_pipeline registers
//                again (a block RAM's output register, flows/implement/outreg.py), then the
//                products. > 0 (a power of two, >= 2), for weights in block RAM (asked of Yosys
//                with rom_style, as memfiles.rom_in_block_ram decides): banks of W_BANK_D
//                words (the last holds the rest; one bank when NF*SF <= W_BANK_D), bank b holding
//                words b*W_BANK_D ..; WEIGHT_FILE is then a format with one %0d for the bank
//                ($sformatf). Every bank is read every cycle, its read registered twice (the
//                output register), the bank selected, and mac_pipeline's register is then one in
//                the fabric beside the products. So neither the multiplexer of a memory deeper
//                than a block RAM (which Yosys would put after a 5.6 ns unregistered read) nor
//                the route from the block RAM column to the products shares a cycle with logic.
//                The input buffer (NF > 1) is then read the same way, registered twice, and the
//                first fold's bypass multiplexer follows both registers, itself registered (the
//                weights read a cycle later to match): so the lanes' copies of the slice
//                (hw/mac_pipeline.sv X_COPIES) load from a register, not from one multiplexer
//                spread across the chip (TFC-w1a1's Gemm_0: a 5.7 ns route after it).
//   THR_SEARCH   1: the count by binary search (hw/threshold_search.sv; each row's thresholds
//                non-decreasing), 0: every threshold compared at once (hw/threshold_count.sv)
//   THRESH_PREFIX  with THR_SEARCH, the beginning of the search's memory files (see Memories)
//   THR_BRAM     1: the threshold memory goes to block RAM (rom_style "block"; the compiler sets it
//                where memfiles.rom_in_block_ram says so), read through a second register beside
//                the comparators (THR_REG2 in hw/mac_pipeline.sv, one cycle more); 0: Yosys decides

`resetall
`timescale 1ns / 1ps
`default_nettype none

module mvau #(
    parameter int MW          = 8,
    parameter int MH          = 4,
    parameter int PE          = 2,
    parameter int SIMD        = 4,
    parameter int IN_W        = 2,
    parameter bit IN_SIGNED   = 1'b0,
    parameter bit IN_BIPOLAR  = 1'b0,
    parameter int W_W         = 2,
    parameter bit W_SIGNED    = 1'b1,
    parameter bit W_BIPOLAR   = 1'b0,
    parameter int ACC_W       = 8,
    parameter int NUM_T       = 0,
    parameter int OUT_W       = 8,
    parameter int OUT_OFFSET  = 0,
    parameter     WEIGHT_FILE = "weights.mem",
    parameter     THRESH_FILE = "",
    parameter int W_BANK_D    = 0,
    parameter bit THR_SEARCH  = 1'b0,
    parameter bit THR_BRAM    = 1'b0,
    parameter     THRESH_PREFIX = ""
) (
    input  wire logic                  clk,
    input  wire logic                  rst,

    input  wire logic [SIMD*IN_W-1:0]  s_axis_tdata,
    input  wire logic                  s_axis_tvalid,
    output wire logic                  s_axis_tready,

    output wire logic [PE*OUT_W-1:0]   m_axis_tdata,
    output wire logic                  m_axis_tvalid,
    input  wire logic                  m_axis_tready
);

    // ---------------------------------------------------------------- configuration checks
    if (PE < 1 || MH % PE != 0) begin : g_bad_pe
        $fatal(1, "%m: PE (%0d) must divide MH (%0d)", PE, MH);
    end
    if (SIMD < 1 || MW % SIMD != 0) begin : g_bad_simd
        $fatal(1, "%m: MW (%0d) must be a multiple of SIMD (%0d)", MW, SIMD);
    end
    if (IN_BIPOLAR && IN_W != 1) begin : g_bad_in_bipolar
        $fatal(1, "%m: a bipolar input is 1 bit wide, not IN_W = %0d", IN_W);
    end
    if (W_BIPOLAR && W_W != 1) begin : g_bad_w_bipolar
        $fatal(1, "%m: bipolar weights are 1 bit wide, not W_W = %0d", W_W);
    end
    if (ACC_W < 2 || ACC_W > 32) begin : g_bad_acc
        $fatal(1, "%m: ACC_W (%0d) must be in 2..32", ACC_W);
    end
    if (NUM_T < 0) begin : g_bad_num_t
        $fatal(1, "%m: NUM_T (%0d) must not be negative", NUM_T);
    end
    if (NUM_T == 0 && OUT_W != ACC_W) begin : g_bad_out
        $fatal(1, "%m: without thresholds OUT_W (%0d) must equal ACC_W (%0d)", OUT_W, ACC_W);
    end

    localparam int NF      = MH / PE;
    localparam int SF      = MW / SIMD;
    localparam int NF_W    = NF > 1 ? $clog2(NF) : 1;
    localparam int SF_W    = SF > 1 ? $clog2(SF) : 1;
    localparam int WADDR_W = NF * SF > 1 ? $clog2(NF * SF) : 1;
    localparam int WWORD_W = PE * SIMD * W_W;
    localparam int XWORD_W = SIMD * IN_W;

    // ---------------------------------------------------------------- control
    logic [NF_W-1:0]    nf_reg;     // fold of the next issue
    logic [WADDR_W-1:0] waddr_reg;  // the weights of the slice (nf_reg, sf_reg)
    logic               space;      // mac_pipeline's queue has room for one more result
    logic first_sf, first_fold, last_sf;  // sf_reg == 0, nf_reg == 0, sf_reg == SF-1
    // verilator lint_off UNUSEDSIGNAL
    logic [SF_W-1:0]    sf_reg;     // slice of the next issue (the input buffer's address when NF > 1)
    logic last_nf;                  // nf_reg == NF-1: the counter wraps by itself
    // verilator lint_on UNUSEDSIGNAL

    // a fold's last slice needs a place in the queue; the first fold needs an input beat
    wire can_issue  = !last_sf || space;
    wire issue      = can_issue && (!first_fold || s_axis_tvalid);

    assign s_axis_tready = can_issue && first_fold;

    fold_counter #(
        .INNER(SF), .OUTER(NF)
    ) u_count (
        .clk(clk), .rst(rst), .step(issue),
        .inner(sf_reg), .outer(nf_reg), .addr(waddr_reg),
        .inner_first(first_sf), .inner_last(last_sf), .outer_first(first_fold), .outer_last(last_nf)
    );

    // ---------------------------------------------------------------- weights
    // read every cycle at a register's address: block RAM friendly, no logic before the read
    localparam bit BANKED = W_BANK_D > 0;
    localparam int NBANK  = BANKED ? (NF * SF + W_BANK_D - 1) / W_BANK_D : 1;
    // the banks are selected by 4:1 multiplexers, a register after each level but the last (which
    // mac_pipeline registers): more than four banks lie far apart along the block-RAM rows, and
    // one multiplexer of nine (CNV's last convolution) took two cross-chip routes in a cycle
    localparam int SEL_W  = NBANK > 1 ? $clog2(NBANK) : 1;
    localparam int SEL_L  = NBANK > 1 ? (SEL_W + 1) / 2 : 0;  // 4:1 levels
    localparam int D_SEL  = SEL_L > 1 ? SEL_L - 1 : 0;        // their registers
    localparam bit X_BYP_REG = BANKED && NF > 1;               // the input buffer's bypass registered
    localparam int W_DELAY = BANKED ? 1 + D_SEL + (X_BYP_REG ? 1 : 0) : 0;  // cycles the banks add

    logic [WWORD_W-1:0] w_ram;  // the weights of the slice issued 1 + W_DELAY cycles before

    if (BANKED) begin : g_banks
        // the read's address: a cycle later with the bypass register, so the weights meet the slice
        logic [WADDR_W-1:0] raddr;
        if (X_BYP_REG) begin : g_raddr_reg
            always_ff @(posedge clk) raddr <= waddr_reg;
        end else begin : g_raddr
            assign raddr = waddr_reg;
        end
        if (W_BANK_D < 2 || (W_BANK_D & (W_BANK_D - 1)) != 0) begin : g_bad_bank
            $fatal(1, "%m: W_BANK_D (%0d) must be a power of two, at least 2", W_BANK_D);
        end
        // a bank's word address: the low bits of the weight address (all of it for one bank)
        localparam int IDX_W = NBANK > 1 ? $clog2(W_BANK_D) : WADDR_W;
        logic [WWORD_W-1:0] bank_q [NBANK];
        for (genvar b = 0; b < NBANK; b++) begin : g_bank
            localparam int D = b < NBANK - 1 ? W_BANK_D : NF * SF - b * W_BANK_D;
            // block RAM also where Yosys would build LUTs (memfiles.rom_in_block_ram: a shallow,
            // very wide ROM whose address would fan out to thousands of LUTs)
            (* rom_style = "block" *) logic [WWORD_W-1:0] bmem [D];
            initial $readmemh($sformatf(WEIGHT_FILE, b), bmem);
            logic [WWORD_W-1:0] rd, q;
            always_ff @(posedge clk) begin
                // the last bank may be shorter: its words beyond D are never selected
                rd <= bmem[raddr[IDX_W-1:0]];
                q  <= rd;
            end
            assign bank_q[b] = q;
        end
        if (NBANK > 1) begin : g_select
            logic [2*SEL_L-1:0] sel_reg, sel_q;  // the bank of the read, beside its two registers
            always_ff @(posedge clk) begin
                sel_reg <= (2*SEL_L)'(raddr[WADDR_W-1:IDX_W]);
                sel_q   <= sel_reg;
            end
            // level k holds the words of groups of 4**k banks, and the bank index beside them
            for (genvar k = 0; k <= SEL_L; k++) begin : g_level
                localparam int CNT = (NBANK + (1 << (2*k)) - 1) >> (2*k);
                logic [WWORD_W-1:0] v [CNT];
                // verilator lint_off UNUSEDSIGNAL
                logic [2*SEL_L-1:0] sel;  // (the last level's is not read)
                // verilator lint_on UNUSEDSIGNAL
                if (k == 0) begin : g_banks_q
                    assign v   = bank_q;
                    assign sel = sel_q;
                end else begin : g_mux
                    localparam int PCNT = (NBANK + (1 << (2*(k-1))) - 1) >> (2*(k-1));
                    wire logic [1:0] pick = g_level[k-1].sel[2*(k-1) +: 2];
                    logic [WWORD_W-1:0] m [CNT];
                    for (genvar i = 0; i < CNT; i++) begin : g_group
                        // (a group short of four, the last: its missing words are never selected)
                        always_comb begin
                            m[i] = g_level[k-1].v[4*i];
                            for (int j = 1; j < 4; j++) begin
                                if (4*i + j < PCNT && pick == 2'(j)) m[i] = g_level[k-1].v[4*i + j];
                            end
                        end
                    end
                    if (k < SEL_L) begin : g_reg
                        always_ff @(posedge clk) begin
                            v   <= m;
                            sel <= g_level[k-1].sel;
                        end
                    end else begin : g_last
                        assign v   = m;
                        assign sel = g_level[k-1].sel;
                    end
                end
            end
            assign w_ram = g_level[SEL_L].v[0];
        end else begin : g_single
            assign w_ram = bank_q[0];
        end
    end else begin : g_one_memory
        logic [WWORD_W-1:0] wmem [NF * SF];
        initial $readmemh(WEIGHT_FILE, wmem);
        always_ff @(posedge clk) begin
            w_ram <= wmem[waddr_reg];
        end
    end

    // ---------------------------------------------------------------- input vector buffer
    logic [XWORD_W-1:0] x_cur;  // the slice at issue, into x_iss
    logic [XWORD_W-1:0] x_mac;  // the slice into mac_pipeline, beside v_reg
    logic [XWORD_W-1:0] x_iss;  // x_cur registered at issue
    // verilator lint_off UNUSEDSIGNAL
    logic [XWORD_W-1:0] x_reg;  // x_iss after u_wait_banks (the bypass register takes x_prev)
    logic [XWORD_W-1:0] x_prev; // x_reg a cycle earlier (with W_DELAY > 0)
    // verilator lint_on UNUSEDSIGNAL

    if (NF > 1 && BANKED) begin : g_buffer_read_reg
        // The buffer is read like the weights: every cycle at sf_reg, the read registered twice
        // (in block RAM: the read and its output register), so it arrives with the banked weights,
        // two cycles after the issue. The stream's slice takes the x_iss / u_wait_banks registers,
        // and the first fold's bypass multiplexer sits after both registers of the read, not
        // after the read itself (a 5.8 ns unregistered DP16KD read, then a route across the
        // chip, in the 8-bit digits CNN's first dense layer).
        // (with D_SEL > 0 registered as many times more, as the weights' selection is)
        // no_rw_check: a read that meets the write of its word happens in the first fold only,
        // whose reads the bypass drops; without it Yosys put collision logic between the DP16KD
        // and its output register, which then stayed in the fabric (CNV-w1a1's last
        // convolution: a 5.6 ns read and a route across the chip, its critical path)
        (* no_rw_check *)
        logic [XWORD_W-1:0] xbuf [SF];
        logic [XWORD_W-1:0] rd, q;
        logic               bypass1, bypass2;  // first_fold, beside rd and q
        always_ff @(posedge clk) begin
            if (issue && first_fold) xbuf[sf_reg] <= s_axis_tdata;
            rd      <= xbuf[sf_reg];
            q       <= rd;
            bypass1 <= first_fold;
            bypass2 <= bypass1;
        end
        logic [XWORD_W:0] qd [D_SEL + 1];  // {bypass, q}, delayed
        assign qd[0] = {bypass2, q};
        for (genvar i = 0; i < D_SEL; i++) begin : g_sel_wait
            always_ff @(posedge clk) qd[i + 1] <= qd[i];
        end
        // the bypass, registered (X_BYP_REG): the stream's slice or the buffer's word
        logic [XWORD_W-1:0] xm_reg;
        always_ff @(posedge clk) xm_reg <= qd[D_SEL][XWORD_W] ? x_prev : qd[D_SEL][XWORD_W-1:0];
        assign x_cur = s_axis_tdata;
        assign x_mac = xm_reg;
    end else if (NF > 1) begin : g_buffer
        logic [XWORD_W-1:0] xbuf [SF];
        if (SF > 1) begin : g_write_reg
            // written a cycle after the issue, from registers (the issued slice x_iss, its place
            // and the write), so the input handshake does not reach the buffer's write decoder in
            // its cycle: in flip-flops (iCE40) that was five LUTs behind the stream's valid, the
            // UP5K's critical path. The first word read back is read SF >= 2 cycles after its
            // write's issue, one after it is written.
            logic            wr_reg;
            logic [SF_W-1:0] wa_reg;
            always_ff @(posedge clk) begin
                wr_reg <= issue && first_fold;
                wa_reg <= sf_reg;
                if (wr_reg) xbuf[wa_reg] <= x_iss;
                if (rst) wr_reg <= 1'b0;
            end
        end else begin : g_write
            always_ff @(posedge clk) begin
                if (issue && first_fold) xbuf[sf_reg] <= s_axis_tdata;
            end
        end
        assign x_cur = first_fold ? s_axis_tdata : xbuf[sf_reg];
        assign x_mac = x_reg;
    end else begin : g_no_buffer
        assign x_cur = s_axis_tdata;
        assign x_mac = x_reg;
    end

    // ---------------------------------------------------------------- the issued slice, registered
    logic               v_iss, first_iss, last_iss;
    logic [NF_W-1:0]    fold_iss;
    always_ff @(posedge clk) begin
        x_iss     <= x_cur;
        v_iss     <= issue;
        first_iss <= first_sf;
        last_iss  <= last_sf;
        fold_iss  <= nf_reg;
        if (rst) v_iss <= 1'b0;
    end

    // banked weights arrive W_DELAY cycles later: the slice waits for them
    logic               v_reg, first_reg, last_reg;
    logic [NF_W-1:0]    fold_reg;
    logic [XWORD_W+2+NF_W-1:0] wait_d [W_DELAY + 1];
    logic                      wait_v [W_DELAY + 1];
    assign wait_d[0] = {x_iss, first_iss, last_iss, fold_iss};
    assign wait_v[0] = v_iss;
    for (genvar i = 0; i < W_DELAY; i++) begin : g_wait_banks
        pipe_stage #(
            .DATA_W(XWORD_W + 2 + NF_W), .STAGE(1'b1)
        ) u_wait_banks (
            .clk(clk), .rst(rst), .d(wait_d[i]), .d_valid(wait_v[i]), .q(wait_d[i + 1]), .q_valid(wait_v[i + 1])
        );
    end
    assign {x_reg, first_reg, last_reg, fold_reg} = wait_d[W_DELAY];
    if (W_DELAY > 0) begin : g_x_prev
        assign x_prev = wait_d[W_DELAY - 1][XWORD_W+2+NF_W-1 -: XWORD_W];
    end else begin : g_no_x_prev
        assign x_prev = '0;
    end
    assign v_reg = wait_v[W_DELAY];

    mac_pipeline #(
        .PE(PE), .SIMD(SIMD), .X_PER_PE(1'b0), .NF(NF), .ACC_MEM(1'b0),
        .IN_W(IN_W), .IN_SIGNED(IN_SIGNED), .IN_BIPOLAR(IN_BIPOLAR),
        .W_W(W_W), .W_SIGNED(W_SIGNED), .W_BIPOLAR(W_BIPOLAR),
        .ACC_W(ACC_W), .NUM_T(NUM_T), .OUT_W(OUT_W), .OUT_OFFSET(OUT_OFFSET), .THRESH_FILE(THRESH_FILE),
        .THR_SEARCH(THR_SEARCH), .THR_BRAM(THR_BRAM), .THRESH_PREFIX(THRESH_PREFIX),
        .IN_DELAY(W_DELAY)
    ) u_mac (
        .clk(clk), .rst(rst),
        .in_valid(v_reg), .in_first(first_reg), .in_last(last_reg), .in_fold(fold_reg),
        .in_x(x_mac), .in_w(w_ram),
        .reserve(issue && last_sf), .space(space),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
