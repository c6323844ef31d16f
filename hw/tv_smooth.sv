// tv_smooth: one total-variation smoothing step on a channels-last feature map, PE channels per beat.
//
// Function  : for each pixel (i, j) and channel c of an IFM_H x IFM_W map of integer codes in
//             LO..HI, with forward differences a = D_x x, b = D_y x (0 where they leave the map),
//             n_x = T[a, b], n_y = T[b, a] and div = D_x^T n_x + D_y^T n_y:
//                 out = clamp(x - ((GAMMA_Q * div + 2^(S-1)) >>> S), LO, HI),  S = FRAC_BITS + GAMMA_FRAC_BITS
//             T[a, b] = round(a * 2^FRAC_BITS / sqrt(a^2 + b^2 + eps)) is odd in a and even in b, so
//             the table holds T[|a|, |b|] only and the sign of a is applied after the read.
//             This is qnnflow.flows.ir.kernels_tv.tv_step (tv_window_step per pixel).
// Streams   : the input is hw/sliding_window.sv's stream with K = 3, STRIDE = 1, PAD = 1 and SIMD = PE
//             over the same map: per output pixel (row-major) 9*CF beats, beat k*CF + cf holding
//             channels cf*PE .. +PE-1 of window position k = ky*3 + kx (CF = CH/PE), element e at
//             bits [e*ELEM_W +: ELEM_W]. Padding positions may hold any value: the boundary masks
//             come from the pixel's position (row and column counters), not from the data. The
//             output is the map itself, channels-last: CF beats per pixel. Input codes must lie in
//             LO..HI (the table is indexed by |difference| <= HI - LO).
// Structure : window positions 1..6 of each channel fold are written to six CF-word LUT memories;
//             at position 7 (the last one the step needs; 0 and 8 are the corners it does not use)
//             the fold's seven codes are complete and go through four stages: differences and
//             masks, the four table reads (TABLE_FILE, LUT ROM), div times GAMMA_Q, the rounded
//             update and the clamp. Position 8's beats are read and dropped.
// Latency   : 7 cycles from a fold's position-7 beat to its output beat (the input register, the
//             four stages, the output queue's 2: hw/credit_queue.sv).
// Throughput: one input beat per cycle: 9*CF cycles per pixel, IFM_H*IFM_W*9*CF per frame.
// Ready     : s_axis_tready depends on registers only: a position-7 beat waits for a credit of the
//             output queue; no combinational path from m_axis_tready.
//
// Parameters:
//   IFM_H, IFM_W     map height and width in pixels (>= 1)
//   CH               channels; PE channels per beat, PE must divide CH
//   ELEM_W           element width; SIGNED: two's complement codes, else unsigned
//   LO, HI           the codes' levels (the activation's range), LO < HI, representable in ELEM_W
//   FRAC_BITS        fraction bits F of the table (1..16)
//   GAMMA_Q          round(gamma^2 * 2^GAMMA_FRAC_BITS) (>= 0)
//   GAMMA_FRAC_BITS  fraction bits G of GAMMA_Q (0..16)
//   TABLE_FILE       $readmemh file of (HI-LO+1)^2 words of FRAC_BITS+1 bits, word |a|*(HI-LO+1) + |b|
//                    = T[|a|, |b|] (qnnflow.flows.codegen.memfiles.tv_table_words)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module tv_smooth #(
    parameter int IFM_H           = 4,
    parameter int IFM_W           = 4,
    parameter int CH              = 2,
    parameter int PE              = 1,
    parameter int ELEM_W          = 2,
    parameter bit SIGNED          = 1'b0,
    parameter int LO              = 0,
    parameter int HI              = 3,
    parameter int FRAC_BITS       = 6,
    parameter int GAMMA_Q         = 4,
    parameter int GAMMA_FRAC_BITS = 4,
    parameter     TABLE_FILE      = "tv_table.mem"
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

    // ---------------------------------------------------------------- configuration checks
    if (PE < 1 || CH % PE != 0) begin : g_bad_fold
        $fatal(1, "%m: PE (%0d) must divide CH (%0d)", PE, CH);
    end
    if (IFM_H < 1 || IFM_W < 1) begin : g_bad_size
        $fatal(1, "%m: the map IFM_H x IFM_W (%0d x %0d) must be at least 1 x 1", IFM_H, IFM_W);
    end
    if (ELEM_W < 1 || ELEM_W > 16) begin : g_bad_elem
        $fatal(1, "%m: ELEM_W (%0d) must be in 1..16", ELEM_W);
    end
    localparam int MIN_CODE = SIGNED ? -(1 << (ELEM_W - 1)) : 0;
    localparam int MAX_CODE = SIGNED ? (1 << (ELEM_W - 1)) - 1 : (1 << ELEM_W) - 1;
    if (LO >= HI || LO < MIN_CODE || HI > MAX_CODE) begin : g_bad_levels
        $fatal(1, "%m: the levels LO..HI (%0d..%0d) must be increasing and fit ELEM_W (%0d, SIGNED %0d: %0d..%0d)",
               LO, HI, ELEM_W, SIGNED, MIN_CODE, MAX_CODE);
    end
    if (FRAC_BITS < 1 || FRAC_BITS > 16 || GAMMA_FRAC_BITS < 0 || GAMMA_FRAC_BITS > 16) begin : g_bad_frac
        $fatal(1, "%m: FRAC_BITS (%0d) must be in 1..16 and GAMMA_FRAC_BITS (%0d) in 0..16",
               FRAC_BITS, GAMMA_FRAC_BITS);
    end
    if (GAMMA_Q < 0 || GAMMA_Q >= (1 << 16)) begin : g_bad_gamma
        $fatal(1, "%m: GAMMA_Q (%0d) must be in 0..65535", GAMMA_Q);
    end

    localparam int CF     = CH / PE;
    localparam int CF_W   = CF > 1 ? $clog2(CF) : 1;
    localparam int BEAT_W = PE * ELEM_W;
    localparam int SPAN   = HI - LO;
    localparam int IDX_W  = $clog2(SPAN + 1);              // |difference| <= SPAN
    localparam int TDEPTH = (SPAN + 1) * (SPAN + 1);
    localparam int TA_W   = $clog2(TDEPTH);
    localparam int T_W    = FRAC_BITS + 1;                  // T[|a|, |b|] <= 2^FRAC_BITS
    localparam int D_W    = ELEM_W + 1;                     // a difference of two codes, signed
    localparam int N_W    = FRAC_BITS + 2;                  // a signed table value
    localparam int DIV_W  = FRAC_BITS + 4;                  // the sum of four of them
    localparam int G_W    = $clog2(GAMMA_Q + 1) + 1;        // GAMMA_Q as a signed number
    localparam int U_W    = DIV_W + G_W;                    // GAMMA_Q * div
    localparam int S      = FRAC_BITS + GAMMA_FRAC_BITS;
    localparam int R_W    = U_W + ELEM_W + 2;               // code minus update, before the clamp
    localparam int HW_    = $clog2(IFM_H + 1) + 1;
    localparam int WW_    = $clog2(IFM_W + 1) + 1;

    // the table of T[|a|, |b|]
    logic [T_W-1:0] table_rom [TDEPTH];
    initial $readmemh(TABLE_FILE, table_rom);

    // ---------------------------------------------------------------- input counters
    logic [CF_W-1:0] cf_reg;                 // channel fold of the next beat
    logic [3:0]      k_reg;                  // window position of the next beat
    logic [HW_-1:0]  row_reg;                // the output pixel of the current window
    logic [WW_-1:0]  col_reg;
    logic            cf_last, k_is7, k_last; // cf_reg == CF-1, k_reg == 7, k_reg == 8
    logic            top, bottom, left, right;  // row > 0, row < IFM_H-1, col > 0, col < IFM_W-1
    logic            space;                  // the output queue has room for one more beat

    assign s_axis_tready = !k_is7 || space;
    wire in_fire = s_axis_tvalid && s_axis_tready;

    always_ff @(posedge clk) begin
        if (in_fire) begin
            cf_reg  <= cf_last ? '0 : cf_reg + 1'b1;
            cf_last <= cf_last ? CF == 1 : cf_reg == CF_W'(CF - 2);
            if (cf_last) begin
                k_reg  <= k_last ? '0 : k_reg + 1'b1;
                k_is7  <= k_reg == 4'd6;
                k_last <= k_is7;
                if (k_last) begin
                    // next pixel, row-major
                    col_reg <= col_reg + 1'b1;
                    left    <= 1'b1;
                    right   <= col_reg + WW_'(2) < WW_'(IFM_W);
                    if (!right) begin
                        col_reg <= '0;
                        left    <= 1'b0;
                        right   <= IFM_W > 1;
                        row_reg <= row_reg + 1'b1;
                        top     <= 1'b1;
                        bottom  <= row_reg + HW_'(2) < HW_'(IFM_H);
                        if (!bottom) begin
                            row_reg <= '0;
                            top     <= 1'b0;
                            bottom  <= IFM_H > 1;
                        end
                    end
                end
            end
        end
        if (rst) begin
            cf_reg  <= '0;
            k_reg   <= '0;
            row_reg <= '0;
            col_reg <= '0;
            cf_last <= CF == 1;
            k_is7   <= 1'b0;
            k_last  <= 1'b0;
            top     <= 1'b0;
            left    <= 1'b0;
            bottom  <= IFM_H > 1;
            right   <= IFM_W > 1;
        end
    end

    // ---------------------------------------------------------------- stage 0: the beat, registered
    logic [BEAT_W-1:0] x0_reg;
    logic [CF_W-1:0]   cf0_reg;
    logic [3:0]        k0_reg;
    logic              v0_reg, go0_reg, top0, bottom0, left0, right0;
    always_ff @(posedge clk) begin
        x0_reg  <= s_axis_tdata;
        cf0_reg <= cf_reg;
        k0_reg  <= k_reg;
        v0_reg  <= in_fire;
        go0_reg <= in_fire && k_is7;
        top0    <= top;
        bottom0 <= bottom;
        left0   <= left;
        right0  <= right;
        if (rst) begin
            v0_reg  <= 1'b0;
            go0_reg <= 1'b0;
        end
    end

    // positions 1..6 of every fold (position 7 is the beat itself when the step starts)
    logic [BEAT_W-1:0] win [1:7];
    for (genvar p = 1; p <= 6; p++) begin : g_pos
        logic [BEAT_W-1:0] mem [CF];
        always_ff @(posedge clk) begin
            if (v0_reg && k0_reg == 4'(p)) mem[cf0_reg] <= x0_reg;
        end
        assign win[p] = mem[cf0_reg];
    end
    assign win[7] = x0_reg;

    // ---------------------------------------------------------------- stages 1 .. 4, per lane
    // window positions: 1 = (0,1), 2 = (0,2), 3 = (1,0), 4 = (1,1) the centre, 5 = (1,2), 6 = (2,0), 7 = (2,1)
    function automatic logic signed [D_W-1:0] code(input logic [ELEM_W-1:0] v);
        code = SIGNED ? D_W'($signed(v)) : D_W'({1'b0, v});
    endfunction

    // |d|, <= SPAN for codes in LO..HI
    function automatic logic [IDX_W-1:0] mag(input logic signed [D_W-1:0] d);
        mag = IDX_W'(d < 0 ? -d : d);
    endfunction

    function automatic logic [TA_W-1:0] taddr(input logic [IDX_W-1:0] a, input logic [IDX_W-1:0] b);
        taddr = TA_W'(a) * TA_W'(SPAN + 1) + TA_W'(b);
    endfunction

    function automatic logic signed [N_W-1:0] signed_t(input logic [T_W-1:0] t, input logic neg);
        signed_t = neg ? -$signed(N_W'(t)) : $signed(N_W'(t));
    endfunction

    logic v1_reg, v2_reg, v3_reg, v4_reg, top1, left1;
    always_ff @(posedge clk) begin
        v1_reg <= go0_reg;
        v2_reg <= v1_reg;
        v3_reg <= v2_reg;
        v4_reg <= v3_reg;
        top1   <= top0;
        left1  <= left0;
        if (rst) begin
            v1_reg <= 1'b0;
            v2_reg <= 1'b0;
            v3_reg <= 1'b0;
            v4_reg <= 1'b0;
        end
    end

    logic [BEAT_W-1:0] out4_reg;
    for (genvar e = 0; e < PE; e++) begin : g_lane
        wire logic signed [D_W-1:0] x01 = code(win[1][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x02 = code(win[2][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x10 = code(win[3][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x11 = code(win[4][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x12 = code(win[5][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x20 = code(win[6][e*ELEM_W +: ELEM_W]);
        wire logic signed [D_W-1:0] x21 = code(win[7][e*ELEM_W +: ELEM_W]);
        // differences leaving the map are 0 (Neumann); n at a position outside it is masked in stage 2
        wire logic signed [D_W-1:0] a11 = right0 ? x12 - x11 : '0;
        wire logic signed [D_W-1:0] b11 = bottom0 ? x21 - x11 : '0;
        wire logic signed [D_W-1:0] a10 = x11 - x10;
        wire logic signed [D_W-1:0] b10 = bottom0 ? x20 - x10 : '0;
        wire logic signed [D_W-1:0] b01 = x11 - x01;
        wire logic signed [D_W-1:0] a01 = right0 ? x02 - x01 : '0;

        // stage 1: magnitudes and signs of the differences
        logic [IDX_W-1:0]  a11_reg, b11_reg, a10_reg, b10_reg, a01_reg, b01_reg;
        logic              sa11_reg, sb11_reg, sa10_reg, sb01_reg;
        logic [ELEM_W-1:0] c1_reg, c2_reg, c3_reg;
        always_ff @(posedge clk) begin
            a11_reg  <= mag(a11);
            b11_reg  <= mag(b11);
            a10_reg  <= mag(a10);
            b10_reg  <= mag(b10);
            a01_reg  <= mag(a01);
            b01_reg  <= mag(b01);
            sa11_reg <= a11 < 0;
            sb11_reg <= b11 < 0;
            sa10_reg <= a10 < 0;
            sb01_reg <= b01 < 0;
            c1_reg   <= win[4][e*ELEM_W +: ELEM_W];
        end

        // stage 2: the four table reads; n_x at (i, j-1) exists only inside the map (left), n_y at
        // (i-1, j) only below the top row
        logic signed [N_W-1:0] nx11_reg, ny11_reg, nx10_reg, ny01_reg;
        always_ff @(posedge clk) begin
            nx11_reg <= signed_t(table_rom[taddr(a11_reg, b11_reg)], sa11_reg);
            ny11_reg <= signed_t(table_rom[taddr(b11_reg, a11_reg)], sb11_reg);
            nx10_reg <= left1 ? signed_t(table_rom[taddr(a10_reg, b10_reg)], sa10_reg) : '0;
            ny01_reg <= top1 ? signed_t(table_rom[taddr(b01_reg, a01_reg)], sb01_reg) : '0;
            c2_reg   <= c1_reg;
        end

        // stage 3: u = GAMMA_Q * div
        wire logic signed [DIV_W-1:0] div = DIV_W'(nx10_reg) - DIV_W'(nx11_reg) + DIV_W'(ny01_reg) - DIV_W'(ny11_reg);
        logic signed [U_W-1:0] u3_reg;
        always_ff @(posedge clk) begin
            u3_reg <= U_W'(div) * $signed(U_W'(GAMMA_Q));
            c3_reg <= c2_reg;
        end

        // stage 4: the update rounded half up (an arithmetic shift of u + 2^(S-1)), the clamp
        wire logic signed [U_W-1:0] upd = (u3_reg + $signed(U_W'(1 << (S - 1)))) >>> S;
        wire logic signed [R_W-1:0] r   = R_W'(code(c3_reg)) - R_W'(upd);
        always_ff @(posedge clk) begin
            if (r < R_W'(LO))      out4_reg[e*ELEM_W +: ELEM_W] <= ELEM_W'(LO);
            else if (r > R_W'(HI)) out4_reg[e*ELEM_W +: ELEM_W] <= ELEM_W'(HI);
            else                   out4_reg[e*ELEM_W +: ELEM_W] <= ELEM_W'(r);
        end
    end

    // reserve -> s_axis is 5 cycles (stage 0 .. 4), + 6 (hw/credit_queue.sv): 16, one LUT RAM, also
    // keeps CF back-to-back position-7 beats from waiting
    credit_queue #(
        .DATA_W(BEAT_W), .DEPTH(16)
    ) u_out (
        .clk(clk), .rst(rst), .reserve(in_fire && k_is7), .space(space),
        .s_axis_tdata(out4_reg), .s_axis_tvalid(v4_reg),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
    );

endmodule

`resetall
