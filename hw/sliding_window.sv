// sliding_window: im2col as a stream (FINN's ConvolutionInputGenerator), with a line buffer.
//
// Function  : input: images of IFM_H x IFM_W pixels of CH channels, channels-last, SIMD channels
//             per beat (beat = pixel (y, x), channels (j mod CF)*SIMD .. +SIMD-1, CF = CH/SIMD).
//             Output: for each output pixel (oy, ox) in row-major order, the K_H x K_W window at
//             input rows oy*STRIDE_H-PAD_H .. +K_H-1 and columns ox*STRIDE_W-PAD_W .. +K_W-1, in
//             (ky, kx, c) order, SIMD channels per beat: K_H*K_W*CF beats per output pixel.
//             Positions outside the image read PAD_VALUE. OH = (IFM_H + 2*PAD_H - K_H)/STRIDE_H + 1
//             (floor), OW likewise. A 1-D convolution (Conv1d over L samples) is IFM_H = 1, K_H = 1,
//             PAD_H = 0, IFM_W = L.
//             This is qnnflow.flows.ir.kernels.sliding_window.
// Buffer    : a ring of NR image rows (IFM_W*CF words each; NR below: 2*K_H, or one more) in
//             one memory with one write and one synchronous read port (block RAM friendly). A
//             row is written once and read by every window that covers it; its slot is reused
//             once no later window needs it.
//             The next image's first rows are written while the current image's last windows are
//             read, so images follow each other back to back.
// Timing    : one output beat per cycle while the rows it needs are in the buffer; one input beat
//             per cycle while a row slot is free. Without stalls a frame takes about
//             max(OH*OW*K_H*K_W*CF, IFM_H*IFM_W*CF) cycles in steady state. An output row is
//             read two cycles after the last beat of the last input row it needs is written, at
//             the earliest (one cycle when an output row has one or two beats).
//             Latency from an issued beat to its output: 6 cycles (address, read, the read's
//             register, padding, the output queue's 2: hw/credit_queue.sv).
// Ready     : s_axis_tready depends only on registers (free row slots); the reader stops as a
//             whole only when its result cannot enter the output slice (skid_buffer), whose ready
//             is a register; no combinational path from m_axis_tready.
//
// Parameters:
//   IFM_H, IFM_W  input height and width in pixels
//   CH            channels; SIMD channels per beat, SIMD must divide CH
//   ELEM_W        element width in bits
//   K             kernel size (square), STRIDE (<= K), PAD (< K) pixels of PAD_VALUE on each side
//   K_H, K_W, STRIDE_H, STRIDE_W, PAD_H, PAD_W
//                 the same per axis (rows, columns) for a non-square kernel; default K, STRIDE, PAD
//   PAD_VALUE     value of padding elements (truncated to ELEM_W bits, so -1 works when signed)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module sliding_window #(
    parameter int IFM_H     = 4,
    parameter int IFM_W     = 4,
    parameter int CH        = 2,
    parameter int SIMD      = 1,
    parameter int ELEM_W    = 8,
    parameter int K         = 3,
    parameter int STRIDE    = 1,
    parameter int PAD       = 0,
    parameter int K_H       = K,
    parameter int K_W       = K,
    parameter int STRIDE_H  = STRIDE,
    parameter int STRIDE_W  = STRIDE,
    parameter int PAD_H     = PAD,
    parameter int PAD_W     = PAD,
    parameter int PAD_VALUE = 0
) (
    input  wire logic                   clk,
    input  wire logic                   rst,

    input  wire logic [SIMD*ELEM_W-1:0] s_axis_tdata,
    input  wire logic                   s_axis_tvalid,
    output wire logic                   s_axis_tready,

    output wire logic [SIMD*ELEM_W-1:0] m_axis_tdata,
    output wire logic                   m_axis_tvalid,
    input  wire logic                   m_axis_tready
);

    if (SIMD < 1 || CH % SIMD != 0) begin : g_bad_fold
        $fatal(1, "%m: SIMD (%0d) must divide CH (%0d)", SIMD, CH);
    end
    // a square kernel's checks name K, STRIDE and PAD; a non-square one's the per-axis values
    localparam bit SQUARE = K_H == K && K_W == K && STRIDE_H == STRIDE && STRIDE_W == STRIDE
                            && PAD_H == PAD && PAD_W == PAD;
    if (SQUARE && (K < 1 || STRIDE < 1 || STRIDE > K)) begin : g_bad_stride
        $fatal(1, "%m: need K >= 1 and 1 <= STRIDE <= K; got K = %0d, STRIDE = %0d", K, STRIDE);
    end
    if (SQUARE && (PAD < 0 || PAD >= K)) begin : g_bad_pad
        $fatal(1, "%m: PAD (%0d) must be in 0..K-1 (K = %0d)", PAD, K);
    end
    if (!SQUARE && (K_H < 1 || STRIDE_H < 1 || STRIDE_H > K_H)) begin : g_bad_stride_h
        $fatal(1, "%m: need K_H >= 1 and 1 <= STRIDE_H <= K_H; got K_H = %0d, STRIDE_H = %0d", K_H, STRIDE_H);
    end
    if (!SQUARE && (K_W < 1 || STRIDE_W < 1 || STRIDE_W > K_W)) begin : g_bad_stride_w
        $fatal(1, "%m: need K_W >= 1 and 1 <= STRIDE_W <= K_W; got K_W = %0d, STRIDE_W = %0d", K_W, STRIDE_W);
    end
    if (!SQUARE && (PAD_H < 0 || PAD_H >= K_H)) begin : g_bad_pad_h
        $fatal(1, "%m: PAD_H (%0d) must be in 0..K_H-1 (K_H = %0d)", PAD_H, K_H);
    end
    if (!SQUARE && (PAD_W < 0 || PAD_W >= K_W)) begin : g_bad_pad_w
        $fatal(1, "%m: PAD_W (%0d) must be in 0..K_W-1 (K_W = %0d)", PAD_W, K_W);
    end
    if (IFM_H + 2*PAD_H < K_H || IFM_W + 2*PAD_W < K_W) begin : g_bad_size
        $fatal(1, "%m: the %0d x %0d kernel is larger than the padded image %0d x %0d (PAD %0d x %0d)",
               K_H, K_W, IFM_H, IFM_W, PAD_H, PAD_W);
    end

    localparam int CF        = CH / SIMD;
    localparam int OH        = (IFM_H + 2*PAD_H - K_H) / STRIDE_H + 1;
    localparam int OW        = (IFM_W + 2*PAD_W - K_W) / STRIDE_W + 1;
    localparam int ROW_BEATS = IFM_W * CF;
    localparam int KC        = K_W * CF;
    // `go` (the reader's "the rows of this output row are complete") is a register when an output
    // row has three beats or more (g_go_reg). A row the reader waits for is then read two cycles
    // after its last beat is written. When the reader empties the row slots as fast as the writer
    // fills them (K_H == STRIDE_H and K_W == STRIDE_W: 1 x 1 and non-overlapping windows), a
    // spare slot lets the writer start a row before the reader ends one, so those two cycles do
    // not lengthen the frame.
    localparam bit GO_REG    = OW * K_H * KC > 2;
    localparam int NR        = 2 * K_H + ((GO_REG && K_H == STRIDE_H) ? 1 : 0);
    localparam int DEPTH     = NR * ROW_BEATS;
    localparam int BEAT_W    = SIMD * ELEM_W;
    localparam int MAW       = $clog2(DEPTH);      // memory address width
    localparam int AW        = MAW + 1;            // addresses, with room for a sum below 2*DEPTH
    localparam int PW        = $clog2(ROW_BEATS + IFM_H + NR + K_H + STRIDE_H + PAD_H
                                      + (K_W + STRIDE_W + PAD_W) * CF + 2) + 2;  // signed
    // address steps, modulo DEPTH
    localparam int OROW_STEP  = (STRIDE_H * ROW_BEATS) % DEPTH;
    localparam int FRAME_STEP = ((IFM_H % NR) * ROW_BEATS) % DEPTH;
    localparam int PAD_BACK   = (DEPTH - ((PAD_H % NR) * ROW_BEATS) % DEPTH) % DEPTH;
    localparam int NEXT_TOP_STEP = (FRAME_STEP + PAD_BACK) % DEPTH;  // next image's first window top

    // (a + step) mod DEPTH for a, step < DEPTH: the sum and the sum less DEPTH side by side, so
    // the result is one adder and a select deep
    function automatic logic [AW-1:0] add_mod(input logic [AW-1:0] a, input logic [AW-1:0] step);
        logic [AW-1:0] s;
        logic [AW:0]   t;
        s = a + step;
        t = {1'b0, a} + {1'b0, step} - (AW+1)'(DEPTH);
        add_mod = t[AW] ? s : t[AW-1:0];  // t < 0: the sum is below DEPTH
    endfunction

    // a row is read only once complete and written only into a free slot, so a read and a write
    // never meet at one word: no_rw_check spares the collision logic Yosys would otherwise add
    // between the block RAM and the register after it
    (* no_rw_check *)
    logic [BEAT_W-1:0] mem [DEPTH];

    // ---------------------------------------------------------------- writer
    logic [AW-1:0]        wr_addr_reg;
    logic [PW-1:0]        wr_col_reg;
    logic signed [PW-1:0] used_reg;        // row slots holding or receiving a row still needed
    logic signed [PW-1:0] rows_ready_reg;  // complete rows, counted from row 0 of the reader's image

    logic                 room_reg;        // used_reg < NR: a row may start
    logic                 col_zero, col_last;  // wr_col_reg == 0, == ROW_BEATS-1 (registers)
    assign s_axis_tready = !col_zero || room_reg;

    wire wr_fire  = s_axis_tvalid && s_axis_tready;
    wire row_new  = wr_fire && col_zero;
    wire row_done = wr_fire && col_last;

    always_ff @(posedge clk) begin
        if (wr_fire) mem[MAW'(wr_addr_reg)] <= s_axis_tdata;
    end

    // ---------------------------------------------------------------- reader
    // The reader issues one beat per cycle while its output row may be read (go) and the output
    // queue has room (space). An output row may be read once every input row its windows touch
    // is complete (the last output row of an image: all rows of the image, so releasing the image
    // never releases a row still being written; top padding: the image's first row, so no beat of
    // an image comes out before the image has started to come in). `go` is a register: computed
    // from the registers of the cycle before, which is safe because complete rows only grow
    // within an image, and at the end of an output row taken from a value prepared for the next
    // row one cycle ahead. The writer's row_done of the cycle is not taken into account: a row
    // the reader waits for is read two cycles after its last beat is written, not one. The writer
    // sits by the input stream and the reader by the buffer's read port; a test of row_done took
    // the input's handshake across the chip into `go` (CNV's SIMD-32 windows, 60 rows of slices).
    logic [PW-1:0]        oy_reg, ox_reg, ky_reg, kc_reg;
    logic signed [PW-1:0] iy_top_reg, next_top_reg;  // input row of the window top, of the next row's
    logic signed [PW-1:0] next_bot_reg;              // next_top_reg + K_H
    logic signed [PW-1:0] iy_reg;                    // input row of the beat
    logic signed [PW-1:0] col_base_reg, col_reg;     // column beat (x*CF + c) of window left, of the beat
    logic [AW-1:0]        frame_top_reg, top_addr_reg, row_addr_reg;  // slot addresses
    logic signed [PW-1:0] freed_reg;                 // rows of this image already released
    logic signed [PW-1:0] release_amt;               // rows this output row releases at its end
    logic signed [PW-1:0] lim0, lim1;                // NR + release_amt, NR - 1 + release_amt
    logic                 go_reg, space;

    // kc_reg == KC-1, ky_reg == K_H-1, ox_reg == OW-1, oy_reg == OH-1: registers, set at an issue
    // from their next values (last_*_n), compares beside the counters' adders
    logic last_kc, last_ky, last_ox, last_oy;
    // the next beat is an output row's last (last_kc && last_ky && last_ox), the image's last (and
    // last_oy): registers too, set from the flags' next values, so that an issue at the end of a
    // row or an image is one LUT of registers. That issue steers the row counts below; with the
    // four flags ANDed behind it, nextpnr spread the LUTs of CNV's SIMD-32 windows across the chip
    // (four hops of 2 ns of routing)
    logic end_row, end_img;
    wire issue    = go_reg && space;
    wire issue_end_row = issue && end_row;
    wire issue_end_img = issue && end_img;

    // the slot address of the next beat's row changes after a window row's last beat (last_kc),
    // to the window's next row, the top of the next window, of the next output row or of the
    // next image: its next value from registers only, and its enable one LUT of registers (in
    // the nested conditions below, the issue reached the enables of the digits CNN's first
    // window through five LUTs on iCE40, the UP5K's critical path)
    logic [AW-1:0] row_addr_d;
    wire row_addr_we = issue && last_kc;
    // the window's next row (row_addr_reg + ROW_BEATS, modulo DEPTH), prepared a cycle ahead when
    // a window row has two beats or more (row_addr_reg changes at most every KC issues): the
    // modular sum, its compare with DEPTH and the select were the iCE40 build's critical path
    // (24 ns, 16 of it routing)
    logic [AW-1:0] row_next;
    if (KC > 1) begin : g_row_next_reg
        always_ff @(posedge clk) row_next <= add_mod(row_addr_reg, AW'(ROW_BEATS % DEPTH));
    end else begin : g_row_next_comb
        assign row_next = add_mod(row_addr_reg, AW'(ROW_BEATS % DEPTH));
    end
    always_comb begin
        row_addr_d = last_ky ? top_addr_reg : row_next;
        if (end_row) row_addr_d = orow_top_next;  // end_row and end_img imply last_kc and last_ky
        if (end_img) row_addr_d = image_top_next;
    end

    // the flags after an issue. pen_*: the counter is at its last value but one (kc_reg == KC-2,
    // ...), registers too, so that the flags' next values are a LUT of registers each (with the
    // counters' compares in front, end_row's input was four LUTs deep: the iCE40 build's
    // critical path after the row address); a counter's pen flag takes the compare with its last
    // value but two
    logic pen_kc, pen_ky, pen_ox, pen_oy;
    logic last_kc_n, last_ky_n, last_ox_n, last_oy_n;
    logic pen_kc_n, pen_ky_n, pen_ox_n, pen_oy_n;
    always_comb begin
        last_kc_n = last_kc ? KC == 1 : pen_kc;
        last_ky_n = !last_kc ? last_ky : last_ky ? K_H == 1 : pen_ky;
        last_ox_n = !(last_kc && last_ky) ? last_ox : last_ox ? OW == 1 : pen_ox;
        last_oy_n = !end_row ? last_oy : last_oy ? OH == 1 : pen_oy;
        pen_kc_n  = last_kc ? KC == 2 : kc_reg == PW'(KC - 3);
        pen_ky_n  = !last_kc ? pen_ky : last_ky ? K_H == 2 : ky_reg == PW'(K_H - 3);
        pen_ox_n  = !(last_kc && last_ky) ? pen_ox : last_ox ? OW == 2 : ox_reg == PW'(OW - 3);
        pen_oy_n  = !end_row ? pen_oy : last_oy ? OH == 2 : oy_reg == PW'(OH - 3);
    end

    // rows an output row needs complete, by the row below its windows (window top + K_H) and
    // whether it is the image's last
    function automatic logic signed [PW-1:0] need(input logic signed [PW-1:0] bottom, input logic last);
        if (last || bottom > PW'(IFM_H)) need = PW'(IFM_H);
        else if (bottom < PW'(1)) need = PW'(1);
        else need = bottom;
    endfunction

    // rows released at the end of an output row: those above the next window top
    logic signed [PW-1:0] freed_new;
    always_comb begin
        if (last_oy) freed_new = PW'(IFM_H);
        else if (next_top_reg < 0) freed_new = '0;
        else if (next_top_reg > PW'(IFM_H)) freed_new = PW'(IFM_H);
        else freed_new = next_top_reg;
    end

    // rows_ready_reg >= n for 0 <= n <= 2*IFM_H (both are never negative there): an unsigned
    // compare as narrow as the counts, one carry chain
    localparam int RW = $clog2(2*IFM_H + NR + 2);
    // a < b for row counts 0 .. 2*IFM_H + NR (never negative): unsigned, as narrow as they are
    // verilator lint_off UNUSEDSIGNAL
    function automatic logic below(input logic signed [PW-1:0] a, input logic signed [PW-1:0] b);
        below = $unsigned(RW'(a)) < $unsigned(RW'(b));
    endfunction
    // verilator lint_on UNUSEDSIGNAL
    // verilator lint_off UNUSEDSIGNAL
    function automatic logic at_least(input logic signed [PW-1:0] n);
        at_least = $unsigned(RW'(rows_ready_reg)) >= $unsigned(RW'(n));
    endfunction
    // verilator lint_on UNUSEDSIGNAL

    if (GO_REG) begin : g_go_reg
        // Each test is one comparison of registers: the need of the current row is a register,
        // set at the end of the row before from a value prepared two cycles ahead (it changes
        // only at the end of a row, and a row has at least three beats).
        logic signed [PW-1:0] plain_reg;  // the next row's need, counted from its image's row 0
        logic                 wrap_reg;   // the next row is the next image's first
        always_ff @(posedge clk) begin
            plain_reg <= last_oy ? need(PW'(K_H - PAD_H), OH == 1) : need(next_bot_reg, oy_reg == PW'(OH - 2));
            wrap_reg  <= last_oy;
        end
        logic signed [PW-1:0] nn_reg;  // the next row's need in this image's count (the next image's rows come after IFM_H)
        logic signed [PW-1:0] np_reg;  // the next row's need in its own image's count
        logic signed [PW-1:0] nc_reg;  // the current row's need
        always_ff @(posedge clk) begin
            nn_reg <= wrap_reg ? plain_reg + PW'(IFM_H) : plain_reg;
            np_reg <= plain_reg;
            if (issue_end_row) begin
                go_reg <= at_least(nn_reg);
                nc_reg <= np_reg;
            end else begin
                go_reg <= at_least(nc_reg);
            end
            if (rst) begin
                go_reg <= 1'b0;
                nc_reg <= need(PW'(K_H - PAD_H), OH == 1);
            end
        end
        // the release of this row, prepared a cycle ahead too (freed_new and freed_reg change only
        // at the end of a row)
        // (two register stages: freed_new, then the differences; a row has at least three beats)
        logic signed [PW-1:0] freed_new_reg;
        always_ff @(posedge clk) begin
            freed_new_reg <= freed_new;
            release_amt   <= freed_new_reg - freed_reg;
            lim0          <= PW'(NR) + freed_new_reg - freed_reg;
            lim1          <= PW'(NR - 1) + freed_new_reg - freed_reg;
        end
    end else begin : g_go_comb  // one or two beats per output row: no time to prepare the next row's
        always_comb go_reg = rows_ready_reg >= need(iy_top_reg + PW'(K_H), last_oy);
        assign release_amt = freed_new - freed_reg;
        assign lim0        = PW'(NR) + release_amt;
        assign lim1        = PW'(NR - 1) + release_amt;
    end

    // The slot addresses an output row's end and an image's end step to, prepared a cycle ahead
    // from the registers they step from (which change only at those ends, and a row has at least
    // two beats): the modular sums are then off the path of the issue (on iCE40 the sum, its
    // compare with DEPTH and the select were six LUTs between two registers)
    logic [AW-1:0] orow_top_next, frame_top_next, image_top_next;
    if (OW * K_H * KC > 1) begin : g_steps_reg
        always_ff @(posedge clk) begin
            orow_top_next  <= add_mod(top_addr_reg, AW'(OROW_STEP));
            frame_top_next <= add_mod(frame_top_reg, AW'(FRAME_STEP));
            image_top_next <= add_mod(frame_top_reg, AW'(NEXT_TOP_STEP));
        end
    end else begin : g_steps_comb  // a beat per output row
        assign orow_top_next  = add_mod(top_addr_reg, AW'(OROW_STEP));
        assign frame_top_next = add_mod(frame_top_reg, AW'(FRAME_STEP));
        assign image_top_next = add_mod(frame_top_reg, AW'(NEXT_TOP_STEP));
    end

    // ---------------------------------------------------------------- read pipeline
    // issue -> address register -> memory read -> a register (no logic between: a block RAM's
    // output register can take it) -> padding -> queue
    wire logic pad_row = iy_reg < 0 || iy_reg >= PW'(IFM_H);
    wire logic pad_col = col_reg < 0 || col_reg >= PW'(ROW_BEATS);
    logic [MAW-1:0]    rd_addr_reg;
    logic [3:1]        v_reg, pad_reg;  // stage k's beat is valid, is padding
    logic              v4_reg;
    logic [BEAT_W-1:0] rd_q, rd3_reg, data4_reg;
    always_ff @(posedge clk) begin
        rd_addr_reg <= MAW'(row_addr_reg + AW'(col_reg));
        rd_q        <= mem[rd_addr_reg];
        rd3_reg     <= rd_q;
        data4_reg   <= pad_reg[3] ? {SIMD{ELEM_W'(PAD_VALUE)}} : rd3_reg;
        v_reg       <= {v_reg[2:1], issue};
        pad_reg     <= {pad_reg[2:1], pad_row || pad_col};
        v4_reg      <= v_reg[3];
        if (rst) begin
            v_reg  <= '0;
            v4_reg <= 1'b0;
        end
    end

    // The row counts' next values, each sum of registers side by side, picked by what happens in
    // the cycle (the writer's row_new / row_done, the reader's end of a row / an image): the
    // events, which depend on both sides' handshakes, reach the counts through a multiplexer,
    // not through an adder's carry chain.
    // row slots in use: +1 when the writer starts a row, -release_amt at the end of an output row
    logic signed [PW-1:0] used_up, used_down, used_both;
    // complete rows: +1 when the writer finishes one, -IFM_H when the reader finishes an image
    logic signed [PW-1:0] ready_up, ready_down, ready_both;
    always_comb begin
        used_up    = used_reg + PW'(1);
        used_down  = used_reg - release_amt;
        used_both  = used_reg + PW'(1) - release_amt;
        ready_up   = rows_ready_reg + PW'(1);
        ready_down = rows_ready_reg - PW'(IFM_H);
        ready_both = rows_ready_reg + PW'(1 - IFM_H);
    end

    always_ff @(posedge clk) begin
        // writer
        if (wr_fire) begin
            wr_addr_reg <= add_mod(wr_addr_reg, AW'(1));
            wr_col_reg  <= row_done ? '0 : wr_col_reg + 1'b1;
            col_zero    <= row_done;
            col_last    <= row_done ? ROW_BEATS == 1 : wr_col_reg == PW'(ROW_BEATS - 2);
        end
        // and room_reg: the next used_reg < NR, for the four cases side by side
        case ({row_new, issue_end_row})
            2'b10: begin
                used_reg <= used_up;
                room_reg <= below(used_reg, PW'(NR - 1));
            end
            2'b01: begin
                used_reg <= used_down;
                room_reg <= below(used_reg, lim0);  // used_reg - release_amt < NR
            end
            2'b11: begin
                used_reg <= used_both;
                room_reg <= below(used_reg, lim1);
            end
            default: room_reg <= below(used_reg, PW'(NR));
        endcase
        case ({row_done, issue_end_img})
            2'b10:   rows_ready_reg <= ready_up;
            2'b01:   rows_ready_reg <= ready_down;
            2'b11:   rows_ready_reg <= ready_both;
            default: ;
        endcase

        // reader: kc, then ky, then ox, then oy
        if (issue) begin
            // the position flags from their next values (above), and the ends they make
            last_kc <= last_kc_n;
            last_ky <= last_ky_n;
            last_ox <= last_ox_n;
            last_oy <= last_oy_n;
            pen_kc  <= pen_kc_n;
            pen_ky  <= pen_ky_n;
            pen_ox  <= pen_ox_n;
            pen_oy  <= pen_oy_n;
            end_row <= last_kc_n && last_ky_n && last_ox_n;
            end_img <= last_kc_n && last_ky_n && last_ox_n && last_oy_n;
            kc_reg  <= kc_reg + 1'b1;
            col_reg <= col_reg + 1'b1;
            if (last_kc) begin
                kc_reg       <= '0;
                ky_reg       <= ky_reg + 1'b1;
                iy_reg       <= iy_reg + 1'b1;
                col_reg      <= col_base_reg;
                if (last_ky) begin
                    ky_reg       <= '0;
                    ox_reg       <= ox_reg + 1'b1;
                    col_base_reg <= col_base_reg + PW'(STRIDE_W * CF);
                    col_reg      <= col_base_reg + PW'(STRIDE_W * CF);
                    iy_reg       <= iy_top_reg;
                end
            end
        end
        // the end of an output row and of an image under their own enables (issue_end_row,
        // issue_end_img: one LUT of registers), not under the nested conditions above, which
        // Yosys would AND into every enable of the registers below
        if (issue_end_row) begin
            ox_reg       <= '0;
            oy_reg       <= oy_reg + 1'b1;
            col_base_reg <= PW'(-PAD_W * CF);
            col_reg      <= PW'(-PAD_W * CF);
            iy_top_reg   <= next_top_reg;
            next_top_reg <= next_top_reg + PW'(STRIDE_H);
            next_bot_reg <= next_bot_reg + PW'(STRIDE_H);
            iy_reg       <= next_top_reg;
            top_addr_reg <= orow_top_next;
            freed_reg    <= freed_new;
        end
        if (issue_end_img) begin
            oy_reg        <= '0;
            iy_top_reg    <= PW'(-PAD_H);
            next_top_reg  <= PW'(-PAD_H + STRIDE_H);
            next_bot_reg  <= PW'(-PAD_H + STRIDE_H + K_H);
            iy_reg        <= PW'(-PAD_H);
            frame_top_reg <= frame_top_next;
            top_addr_reg  <= image_top_next;
            freed_reg     <= '0;
        end
        if (row_addr_we) row_addr_reg <= row_addr_d;

        if (rst) begin
            wr_addr_reg    <= '0;
            wr_col_reg     <= '0;
            col_zero       <= 1'b1;
            col_last       <= ROW_BEATS == 1;
            used_reg       <= '0;
            room_reg       <= 1'b1;
            rows_ready_reg <= '0;
            oy_reg         <= '0;
            ox_reg         <= '0;
            ky_reg         <= '0;
            kc_reg         <= '0;
            last_kc        <= KC == 1;
            last_ky        <= K_H == 1;
            last_ox        <= OW == 1;
            last_oy        <= OH == 1;
            pen_kc         <= KC == 2;
            pen_ky         <= K_H == 2;
            pen_ox         <= OW == 2;
            pen_oy         <= OH == 2;
            end_row        <= KC == 1 && K_H == 1 && OW == 1;
            end_img        <= KC == 1 && K_H == 1 && OW == 1 && OH == 1;
            iy_top_reg     <= PW'(-PAD_H);
            next_top_reg   <= PW'(-PAD_H + STRIDE_H);
            next_bot_reg   <= PW'(-PAD_H + STRIDE_H + K_H);
            iy_reg         <= PW'(-PAD_H);
            col_base_reg   <= PW'(-PAD_W * CF);
            col_reg        <= PW'(-PAD_W * CF);
            frame_top_reg  <= '0;
            top_addr_reg   <= AW'(PAD_BACK);
            row_addr_reg   <= AW'(PAD_BACK);
            freed_reg      <= '0;
        end
    end

    // ---------------------------------------------------------------- output queue and credits
    // read pipeline (4) + 6 (hw/credit_queue.sv)
    credit_queue #(
        .DATA_W(BEAT_W), .DEPTH(10)
    ) u_queue (
        .clk(clk), .rst(rst), .reserve(issue), .space(space),
        .s_axis_tdata(data4_reg), .s_axis_tvalid(v4_reg),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
