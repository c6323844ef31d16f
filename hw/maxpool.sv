// maxpool: K_H x K_W max pooling with stride (K_H, K_W) over a channels-last image stream.
//
// Function  : input IFM_H x IFM_W pixels of CH channels (NHWC, one image per frame), PE channels
//             per beat (beat = pixel (y, x), channels (j mod CF)*PE .. +PE-1, CF = CH/PE);
//             output OH x OW pixels, OH = IFM_H / K_H, OW = IFM_W / K_W (floor: rows and columns past
//             the last whole window are read and dropped), each channel the maximum over its
//             window. Elements are two's complement if SIGNED, else unsigned.
// Structure : the running maxima of one row of windows are kept in an OW*CF-word buffer (LUT
//             RAM). Stage 1 reads a beat's maximum, stage 2 compares and writes it back; a write
//             to the word stage 1 reads in the same cycle is forwarded.
// Latency   : 5 cycles from the last input beat of a window to its output beat (stage 1,
//             stage 2, its result's register, the output queue's 2: hw/credit_queue.sv).
// Throughput: one input beat per cycle, so IFM_H*IFM_W*CF cycles per frame.
// Ready     : s_axis_tready depends on registers only: a window's last beat waits for a credit
//             of the output queue; no combinational path from m_axis_tready.
//
// Parameters:
//   IFM_H, IFM_W  input height and width in pixels (>= K_H, K_W)
//   CH            channels
//   PE            channels per beat; must divide CH
//   ELEM_W        element width in bits
//   SIGNED        1: two's complement elements; 0: unsigned
//   K             window size and stride (square)
//   K_H, K_W      the same per axis (rows, columns), e.g. 1 x K for a 1-D pooling; default K

`resetall
`timescale 1ns / 1ps
`default_nettype none

module maxpool #(
    parameter int IFM_H  = 4,
    parameter int IFM_W  = 4,
    parameter int CH     = 2,
    parameter int PE     = 1,
    parameter int ELEM_W = 8,
    parameter bit SIGNED = 1'b0,
    parameter int K      = 2,
    parameter int K_H    = K,
    parameter int K_W    = K
) (
    input  wire logic                 clk,
    input  wire logic                 rst,

    input  wire logic [PE*ELEM_W-1:0] s_axis_tdata,
    input  wire logic                 s_axis_tvalid,
    output wire logic                 s_axis_tready,

    output wire logic [PE*ELEM_W-1:0] m_axis_tdata,
    output wire logic                 m_axis_tvalid,
    input  wire logic                 m_axis_tready
);

    if (PE < 1 || CH % PE != 0) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d) must divide CH (%0d)", PE, CH);
    end
    // a square window's check names K; a non-square one's K_H and K_W
    localparam bit SQUARE = K_H == K && K_W == K;
    if (SQUARE && (K < 1 || IFM_H < K || IFM_W < K)) begin : g_bad_window
        $fatal(1, "%m: K (%0d) must be in 1..min(IFM_H (%0d), IFM_W (%0d))", K, IFM_H, IFM_W);
    end
    if (!SQUARE && (K_H < 1 || K_W < 1 || IFM_H < K_H || IFM_W < K_W)) begin : g_bad_window_axes
        $fatal(1, "%m: the window K_H x K_W (%0d x %0d) must fit the image IFM_H x IFM_W (%0d x %0d)",
               K_H, K_W, IFM_H, IFM_W);
    end

    localparam int CF    = CH / PE;
    localparam int OH    = IFM_H / K_H;
    localparam int OW    = IFM_W / K_W;
    localparam int DEPTH = OW * CF;
    localparam int CNT_W = $clog2(IFM_H + IFM_W + CF + K_H + K_W + DEPTH + 2) + 1;  // one width for every counter
    localparam int BEAT_W = PE * ELEM_W;

    localparam int ADDR_W = DEPTH > 1 ? $clog2(DEPTH) : 1;

    logic [CNT_W-1:0]  cf_reg, kx_reg, ky_reg, ix_reg, iy_reg, ox_reg, oy_reg;
    logic [ADDR_W-1:0] addr_reg;  // the beat's running maximum: ox_reg*CF + cf_reg
    logic              space;     // the output queue has room for one more window

    // running maxima of the current row of windows, stored as their bitwise complement: the NOT
    // after the read keeps Yosys from merging stage 1's register into the memory's read port
    // (for LUT RAM it would then sit on the address side, and the read would join stage 2's
    // compare and write in one cycle)
    logic [BEAT_W-1:0] row_max_n [DEPTH];

    // position flags, registers set from compares beside the counters' adders
    logic cf_last, kx_zero, kx_last, ix_last, ky_zero, ky_last, iy_last, ox_in, oy_in;
    wire in_window = ox_in && oy_in;  // ox_reg < OW, oy_reg < OH
    wire first     = kx_zero && ky_zero;
    // the beat is a window's last (in_window && kx_last && ky_last): a register too, set from the
    // flags' next values (below), so that the handshake is one LUT of registers before the
    // counters' enables (with the four flags ANDed in it, the digits CNN's w8a4 MaxPool had
    // four LUTs between its registers)
    logic done;
    // a window's last beat needs a place in the output queue
    assign s_axis_tready = !done || space;
    wire in_fire   = s_axis_tvalid && s_axis_tready;

    // the flags that make `done`, after a beat is taken
    logic kx_last_n, ky_last_n, ox_in_n, oy_in_n;
    always_comb begin
        kx_last_n = kx_last;
        ky_last_n = ky_last;
        ox_in_n   = ox_in;
        oy_in_n   = oy_in;
        if (cf_last) begin
            kx_last_n = kx_last ? K_W == 1 : kx_reg == CNT_W'(K_W - 2);
            if (kx_last) ox_in_n = OW > 1 && ox_reg < CNT_W'(OW > 1 ? OW - 1 : 1);
            if (ix_last) begin  // next row
                kx_last_n = K_W == 1;
                ox_in_n   = 1'b1;
                ky_last_n = ky_last ? K_H == 1 : ky_reg == CNT_W'(K_H - 2);
                if (ky_last) oy_in_n = OH > 1 && oy_reg < CNT_W'(OH > 1 ? OH - 1 : 1);
                if (iy_last) begin
                    ky_last_n = K_H == 1;
                    oy_in_n   = 1'b1;
                end
            end
        end
    end

    // ---------------------------------------------------------------- stage 1: read
    // the beat and its running maximum, registered; the maximum comes from the memory or, when
    // stage 2 writes the same word in this cycle (CF = 1: the window's previous pixel), from there
    logic [BEAT_W-1:0] x1_reg, prev1_reg, cur2;
    logic [ADDR_W-1:0] addr1_reg;
    logic              v1_reg, win1_reg, first1_reg, done1_reg;
    wire logic         write2 = v1_reg && win1_reg;

    always_ff @(posedge clk) begin
        x1_reg     <= s_axis_tdata;
        addr1_reg  <= addr_reg;
        prev1_reg  <= (write2 && addr1_reg == addr_reg) ? cur2 : ~row_max_n[addr_reg];
        v1_reg     <= in_fire;
        win1_reg   <= in_window;
        first1_reg <= first;
        done1_reg  <= done;
        if (rst) v1_reg <= 1'b0;
    end

    // ---------------------------------------------------------------- stage 2: compare, write
    always_comb begin
        for (int e = 0; e < PE; e++) begin
            logic [ELEM_W-1:0] a, b;
            logic a_wins;
            a = x1_reg[e*ELEM_W +: ELEM_W];
            b = prev1_reg[e*ELEM_W +: ELEM_W];
            a_wins = SIGNED ? ($signed(a) > $signed(b)) : (a > b);
            cur2[e*ELEM_W +: ELEM_W] = (first1_reg || a_wins) ? a : b;
        end
    end

    always_ff @(posedge clk) begin
        if (write2) row_max_n[addr1_reg] <= ~cur2;
    end

    // ---------------------------------------------------------------- counters
    always_ff @(posedge clk) begin
        if (in_fire) begin
            kx_last  <= kx_last_n;
            ky_last  <= ky_last_n;
            ox_in    <= ox_in_n;
            oy_in    <= oy_in_n;
            done     <= ox_in_n && oy_in_n && kx_last_n && ky_last_n;
            cf_reg   <= cf_reg + 1'b1;
            cf_last  <= cf_reg == CNT_W'(CF - 2);
            addr_reg <= addr_reg + 1'b1;
            if (cf_last) begin
                // next pixel: the same window's words again, or the next window's
                cf_reg  <= '0;
                cf_last <= CF == 1;
                ix_reg  <= ix_reg + 1'b1;
                ix_last <= ix_reg == CNT_W'(IFM_W - 2);
                kx_reg  <= kx_reg + 1'b1;
                kx_zero <= 1'b0;
                if (kx_last) begin
                    kx_reg  <= '0;
                    kx_zero <= 1'b1;
                    ox_reg  <= ox_reg + 1'b1;
                end else begin
                    addr_reg <= addr_reg - ADDR_W'(CF - 1);
                end
                if (ix_last) begin
                    // next row
                    ix_reg   <= '0;
                    ix_last  <= IFM_W == 1;
                    kx_reg   <= '0;
                    kx_zero  <= 1'b1;
                    ox_reg   <= '0;
                    addr_reg <= '0;
                    iy_reg   <= iy_reg + 1'b1;
                    iy_last  <= iy_reg == CNT_W'(IFM_H - 2);
                    ky_reg   <= ky_reg + 1'b1;
                    ky_zero  <= 1'b0;
                    if (ky_last) begin
                        ky_reg  <= '0;
                        ky_zero <= 1'b1;
                        oy_reg  <= oy_reg + 1'b1;
                    end
                    if (iy_last) begin
                        iy_reg  <= '0;
                        iy_last <= IFM_H == 1;
                        ky_reg  <= '0;
                        ky_zero <= 1'b1;
                        oy_reg  <= '0;
                    end
                end
            end
        end
        if (rst) begin
            cf_reg   <= '0;
            kx_reg   <= '0;
            ky_reg   <= '0;
            ix_reg   <= '0;
            iy_reg   <= '0;
            ox_reg   <= '0;
            oy_reg   <= '0;
            addr_reg <= '0;
            cf_last  <= CF == 1;
            kx_zero  <= 1'b1;
            kx_last  <= K_W == 1;
            ix_last  <= IFM_W == 1;
            ky_zero  <= 1'b1;
            ky_last  <= K_H == 1;
            iy_last  <= IFM_H == 1;
            ox_in    <= 1'b1;
            oy_in    <= 1'b1;
            done     <= K_W == 1 && K_H == 1;
        end
    end

    // ---------------------------------------------------------------- output
    // a window's maximum, registered before the queue (stage 3)
    logic [BEAT_W-1:0] out3_reg;
    logic              v3_reg;
    always_ff @(posedge clk) begin
        out3_reg <= cur2;
        v3_reg   <= v1_reg && done1_reg;
        if (rst) v3_reg <= 1'b0;
    end

    // stages 2, 3 (2) + 6 (hw/credit_queue.sv)
    credit_queue #(
        .DATA_W(BEAT_W), .DEPTH(8)
    ) u_out (
        .clk(clk), .rst(rst), .reserve(in_fire && done), .space(space),
        .s_axis_tdata(out3_reg), .s_axis_tvalid(v3_reg),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
