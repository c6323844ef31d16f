// frame_decoder: host-link frames (bytes) -> the accelerator's input stream, plus one status
// word per frame header for the frame encoder.
//
// Frame (host -> board), defined in qnnflow/host.py:
//   SYNC 0xA5 | TYPE | SEQ | LEN[7:0] | LEN[15:8] | LEN payload bytes | CRC[15:8] | CRC[7:0]
// CRC: CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) of TYPE..payload, most
// significant byte first; so the CRC register over TYPE..CRC[7:0] ends at 0 for a good frame.
// An image frame has TYPE 0x01 and LEN = IN_BEATS * ceil(IN_W / 8): each input beat is sent as
// ceil(IN_W / 8) bytes, least significant byte first (bits above IN_W are ignored).
//
// Function  : bytes before a SYNC byte are skipped. A header whose TYPE or LEN is wrong gives an
//             error status (nothing reaches the accelerator) and the decoder hunts for the next
//             SYNC. Payload bytes are assembled into beats and sent on m_axis as they arrive
//             (m_axis_tlast on the last beat of the frame), so the accelerator starts before the
//             CRC is known; the status word then says whether the frame's result is valid:
//               m_status_tdata = {has_data, type, seq}   (1 + 8 + 8 bits)
//             has_data: the accelerator got a whole frame and will produce one result for it;
//             type: 0x81 (result valid) or an error code, 0xE1 bad length, 0xE2 bad checksum,
//             0xE3 timeout, 0xE4 bad type.
//             If no byte arrives for TIMEOUT_CLKS cycles inside a frame, the frame is abandoned
//             (in the cycle after, from a register): the rest of its payload goes to the
//             accelerator as zero bytes (so the accelerator stays aligned to frames) and the
//             status is a timeout error. So the decoder never waits forever in the middle of a
//             frame.
// Latency   : a beat leaves 1 cycle after its last byte is accepted; the status 2 cycles after
//             the last CRC byte (or the header byte that was wrong): the frame's end and its
//             status code are registered before the status register and the state take them, so
//             the byte handshake (on iCE40 once the board's critical path) reaches neither in
//             the same cycle; no byte is taken in that cycle. The CRC's verdict is read from the
//             CRC register in that cycle (not from the last byte's CRC update, which would put
//             the byte, the CRC step and a 16-bit compare in one cycle).
// Structure : each payload byte is written in place into the beat register, which is m_axis_tdata
//             (no shift, no second copy: a wide beat, e.g. TFC's 392 bits, had its whole width
//             loaded on the byte handshake, a high fan-out enable that limited ECP5's clock). The
//             byte's place is a one-hot register, so each byte lane's enable is one LUT of the
//             handshake; the beat's and the frame's last byte are registers too.
// Throughput: one byte every cycle within a beat; a beat every BEAT_BYTES + 2 cycles at most
//             (the beat's handshake, then a cycle for the ready register), and one idle cycle after
//             the header's last byte; far above any UART rate.
// Ready     : s_axis_tready is a register, set from the next state (so a byte's handshake
//             reaches the state and the registers it loads through one or two LUTs, not through
//             the ready's logic too: on iCE40 that was the board's critical path). It is low in
//             the cycle after the header's last byte and after the CRC's last byte, where the
//             frame may end, and while a beat waits on m_axis (until the cycle after its
//             handshake: m_axis_tready reaches out_valid_reg alone). m_axis_* and m_status_* are
//             registers.
//
// Parameters:
//   IN_W          width of the accelerator's input tdata in bits (>= 1)
//   IN_BEATS      input beats per frame (>= 1; payload bytes must fit in 16 bits)
//   TIMEOUT_CLKS  cycles without a byte after which a started frame is abandoned (>= 2)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module frame_decoder #(
    parameter int IN_W         = 8,
    parameter int IN_BEATS     = 64,
    parameter int TIMEOUT_CLKS = 100000
) (
    input  wire logic            clk,
    input  wire logic            rst,

    input  wire logic [7:0]      s_axis_tdata,
    input  wire logic            s_axis_tvalid,
    output wire logic            s_axis_tready,

    output wire logic [IN_W-1:0] m_axis_tdata,
    output wire logic            m_axis_tvalid,
    input  wire logic            m_axis_tready,
    output wire logic            m_axis_tlast,

    output wire logic [16:0]     m_status_tdata,
    output wire logic            m_status_tvalid,
    input  wire logic            m_status_tready
);

    localparam int BEAT_BYTES  = (IN_W + 7) / 8;
    localparam int FRAME_BYTES = IN_BEATS * BEAT_BYTES;

    initial begin
        if (IN_W < 1) $fatal(1, "%m: IN_W (%0d) must be at least 1", IN_W);
        if (IN_BEATS < 1) $fatal(1, "%m: IN_BEATS (%0d) must be at least 1", IN_BEATS);
        if (FRAME_BYTES > 65535)
            $fatal(1, "%m: a frame of IN_BEATS (%0d) x %0d bytes must fit in 65535 bytes", IN_BEATS, BEAT_BYTES);
        if (TIMEOUT_CLKS < 2) $fatal(1, "%m: TIMEOUT_CLKS (%0d) must be at least 2", TIMEOUT_CLKS);
    end

    localparam logic [7:0] SYNC         = 8'hA5;
    localparam logic [7:0] TYPE_IMAGE   = 8'h01;
    localparam logic [7:0] TYPE_RESULT  = 8'h81;
    localparam logic [7:0] ERR_LENGTH   = 8'hE1;
    localparam logic [7:0] ERR_CHECKSUM = 8'hE2;
    localparam logic [7:0] ERR_TIMEOUT  = 8'hE3;
    localparam logic [7:0] ERR_TYPE     = 8'hE4;

    localparam int ASM_W   = BEAT_BYTES * 8;
    localparam int BEAT_W  = IN_BEATS > 1 ? $clog2(IN_BEATS) : 1;
    localparam int TIMER_W = $clog2(TIMEOUT_CLKS + 1);

    typedef enum logic [3:0] {HUNT, TYPE, SEQ, LEN_LO, LEN_HI, PAYLOAD, PAD, CRC_HI, CRC_LO, STATUS} state_t;

    state_t                  state_reg;
    logic [7:0]              type_reg, seq_reg, len_lo_reg;
    logic [15:0]             crc_reg;        // CRC-16 of the frame's bytes after SYNC so far
    logic [BEAT_BYTES-1:0]   byte_pos_reg;   // one-hot: the byte of the beat the next byte fills
    logic [BEAT_W-1:0]       beat_cnt_reg;   // beat within the frame
    logic                    last_beat_reg;  // beat_cnt_reg == IN_BEATS - 1, kept beside it
    logic [ASM_W-1:0]        asm_reg;        // the beat: byte i in bits 8i+7..8i; m_axis_tdata
    logic                    out_valid_reg, out_last_reg;
    logic [16:0]             status_reg;
    logic                    status_valid_reg;
    logic [TIMER_W-1:0]      timer_reg;      // waiting cycles; cleared by the flop's reset input
    logic                    timer_last_reg; // timer_reg == TIMEOUT_CLKS - 1, kept beside it

    wire logic [15:0] crc_next;
    crc #(.WIDTH(16), .POLY(32'h1021)) u_crc (.crc_in(crc_reg), .data(s_axis_tdata), .crc_out(crc_next));

    // (no byte is taken in the cycle a timeout or a frame's end acts from its register)
    logic timeout_reg, finish_reg;
    logic ready_reg;
    assign s_axis_tready   = ready_reg;
    assign m_axis_tdata    = asm_reg[IN_W-1:0];
    assign m_axis_tvalid   = out_valid_reg;
    assign m_axis_tlast    = out_last_reg;
    assign m_status_tdata  = status_reg;
    assign m_status_tvalid = status_valid_reg;

    wire take       = s_axis_tvalid && s_axis_tready;
    // a payload byte enters the beat: received, or a zero byte padding an abandoned frame
    wire put        = (state_reg == PAYLOAD && take) || (state_reg == PAD && !out_valid_reg);
    wire [7:0] put_byte = state_reg == PAD ? 8'h00 : s_axis_tdata;
    wire beat_done  = byte_pos_reg[BEAT_BYTES-1];
    wire frame_done = beat_done && last_beat_reg;
    wire in_frame   = state_reg != HUNT && state_reg != PAD && state_reg != STATUS;
    // the timer runs only while the decoder waits for a byte (ready), not while m_axis stalls
    wire waiting    = in_frame && ready_reg && !s_axis_tvalid;
    // the timer ran out in the cycle before (a register, so the handshake's logic and the
    // timer's do not meet in one cycle on the way to the state)
    wire timed_out  = timeout_reg;

    // the frame ends here: its status word goes to the encoder (registered first: finish_reg,
    // which then sets the status and the state)
    logic       finish;
    logic       finish_has_data;
    logic [7:0] finish_code;
    logic       finish_crc;       // the frame's code is the CRC's verdict (read at finish_reg)
    logic       finish_has_data_reg;
    logic [7:0] finish_code_reg;
    logic       finish_crc_reg;

    always_comb begin
        finish          = 1'b0;
        finish_has_data = 1'b0;
        finish_code     = ERR_TIMEOUT;
        finish_crc      = 1'b0;
        if (timed_out) begin
            finish          = state_reg != PAYLOAD;
            finish_has_data = state_reg == CRC_HI || state_reg == CRC_LO;
        end else if (state_reg == LEN_HI && take) begin
            finish      = type_reg != TYPE_IMAGE || {s_axis_tdata, len_lo_reg} != 16'(FRAME_BYTES);
            finish_code = type_reg != TYPE_IMAGE ? ERR_TYPE : ERR_LENGTH;
        end else if (state_reg == PAD && put && frame_done) begin
            finish          = 1'b1;
            finish_has_data = 1'b1;
        end else if (state_reg == CRC_LO && take) begin
            finish          = 1'b1;
            finish_has_data = 1'b1;
            finish_crc      = 1'b1;
        end
    end

    // the next state, and the next cycle's ready from it
    state_t state_next;
    always_comb begin
        state_next = state_reg;
        case (state_reg)
            HUNT:    if (take && s_axis_tdata == SYNC) state_next = TYPE;
            TYPE:    if (take) state_next = SEQ;
            SEQ:     if (take) state_next = LEN_LO;
            LEN_LO:  if (take) state_next = LEN_HI;
            LEN_HI:  if (take) state_next = PAYLOAD;  // unless `finish` says the header was wrong
            PAYLOAD: if (timed_out) state_next = PAD;
                     else if (put && frame_done) state_next = CRC_HI;
            CRC_HI:  if (take) state_next = CRC_LO;
            STATUS:  if (m_status_tready) state_next = HUNT;
            default: ;
        endcase
        if (finish_reg) state_next = STATUS;
    end
    // (a beat on m_axis counts until the cycle after its handshake: m_axis_tready comes from the
    // accelerator's first layer, placed anywhere, and reaches out_valid_reg alone)
    wire beat_held      = (put && beat_done) || out_valid_reg;
    // low where the frame may end (a timeout, or a byte after which `finish` may be set), so
    // that no byte is taken in the cycle finish_reg or timeout_reg acts
    wire may_end        = timed_out || (waiting && timer_last_reg)
                          || (take && (state_reg == LEN_HI || state_reg == CRC_LO));
    wire ready_next     = state_next != STATUS && state_next != PAD
                          && !(state_next == PAYLOAD && beat_held) && !may_end;

    always_ff @(posedge clk) begin
        if (out_valid_reg && m_axis_tready) out_valid_reg <= 1'b0;
        state_reg <= state_next;
        ready_reg <= ready_next;

        if (take || !in_frame) begin
            timer_reg      <= '0;
            timer_last_reg <= 1'b0;  // TIMEOUT_CLKS >= 2
        end else if (waiting) begin
            timer_reg      <= timer_reg + 1'b1;
            timer_last_reg <= timer_reg == TIMER_W'(TIMEOUT_CLKS - 2);
        end

        // (no byte is put while a beat waits on m_axis: ready is low, and PAD waits for it)
        for (int i = 0; i < BEAT_BYTES; i++)
            if (put && byte_pos_reg[i]) asm_reg[8*i +: 8] <= put_byte;
        if (put) begin
            byte_pos_reg <= (byte_pos_reg << 1) | BEAT_BYTES'(beat_done);  // rotate
            if (beat_done) begin
                out_valid_reg <= 1'b1;
                out_last_reg  <= frame_done;
                beat_cnt_reg  <= frame_done ? '0 : beat_cnt_reg + 1'b1;
                last_beat_reg <= frame_done ? IN_BEATS == 1 : beat_cnt_reg == BEAT_W'(IN_BEATS - 2);
            end
        end

        if (take && state_reg != HUNT) crc_reg <= crc_next;

        case (state_reg)
            HUNT: if (take && s_axis_tdata == SYNC) begin
                crc_reg <= 16'hFFFF;
                seq_reg <= '0;
            end
            TYPE: if (take) type_reg <= s_axis_tdata;
            SEQ: if (take) seq_reg <= s_axis_tdata;
            LEN_LO: if (take) len_lo_reg <= s_axis_tdata;
            LEN_HI: if (take) begin
                byte_pos_reg  <= BEAT_BYTES'(1);
                beat_cnt_reg  <= '0;
                last_beat_reg <= IN_BEATS == 1;
            end
            STATUS: if (m_status_tready) status_valid_reg <= 1'b0;
            default: ;
        endcase

        timeout_reg         <= waiting && timer_last_reg && !timeout_reg;
        finish_reg          <= finish && !finish_reg;
        finish_has_data_reg <= finish_has_data;
        finish_code_reg     <= finish_code;
        finish_crc_reg      <= finish_crc;
        // (seq_reg holds until then: no byte is taken while finish_reg is set)
        if (finish_reg) begin
            status_reg       <= {finish_has_data_reg,
                                 finish_crc_reg ? (crc_reg == 16'h0000 ? TYPE_RESULT : ERR_CHECKSUM) : finish_code_reg,
                                 seq_reg};
            status_valid_reg <= 1'b1;
        end

        if (rst) begin
            state_reg        <= HUNT;
            ready_reg        <= 1'b0;
            out_valid_reg    <= 1'b0;
            status_valid_reg <= 1'b0;
            finish_reg       <= 1'b0;
            timeout_reg      <= 1'b0;
            timer_reg        <= '0;
            timer_last_reg   <= 1'b0;
            byte_pos_reg     <= BEAT_BYTES'(1);
            beat_cnt_reg     <= '0;
            last_beat_reg    <= IN_BEATS == 1;
        end
    end

endmodule

`resetall
