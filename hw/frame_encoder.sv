// frame_encoder: one host-link response frame (bytes) per status word of the frame decoder.
//
// Frame (board -> host), defined in qnnflow/host.py:
//   SYNC 0xA5 | TYPE | SEQ | LEN[7:0] | LEN[15:8] | LEN payload bytes | CRC[15:8] | CRC[7:0]
// CRC: CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF) of TYPE..payload, most
// significant byte first.
// A result frame (TYPE 0x81) carries the accelerator's OUT_BEATS output beats of the frame, each
// as ceil(OUT_W / 8) bytes, least significant byte first. An error frame carries the decoder's
// error code as TYPE and no payload.
//
// Function  : takes a status word {has_data, type, seq} (see frame_decoder). When has_data is
//             set, the accelerator owes OUT_BEATS beats for that frame: they become the payload
//             of a result frame, or, if the frame had an error, they are read and dropped after
//             the error frame is sent, so results stay matched to their frames.
// Latency   : the SYNC byte is offered 1 cycle after the status word is accepted.
// Throughput: one byte per cycle when m_axis is always ready (the UART takes one per byte time).
// Ready     : s_status_tready and s_axis_tready depend on registers only; m_axis_* are registers.
//
// Parameters:
//   OUT_W      width of the accelerator's output tdata in bits (>= 1)
//   OUT_BEATS  output beats per frame (>= 1; payload bytes must fit in 16 bits)

`resetall
`timescale 1ns / 1ps
`default_nettype none

module frame_encoder #(
    parameter int OUT_W     = 8,
    parameter int OUT_BEATS = 1
) (
    input  wire logic             clk,
    input  wire logic             rst,

    input  wire logic [16:0]      s_status_tdata,
    input  wire logic             s_status_tvalid,
    output wire logic             s_status_tready,

    input  wire logic [OUT_W-1:0] s_axis_tdata,
    input  wire logic             s_axis_tvalid,
    output wire logic             s_axis_tready,

    output wire logic [7:0]       m_axis_tdata,
    output wire logic             m_axis_tvalid,
    input  wire logic             m_axis_tready
);

    localparam int BEAT_BYTES  = (OUT_W + 7) / 8;
    localparam int FRAME_BYTES = OUT_BEATS * BEAT_BYTES;
    localparam int BEAT_W      = BEAT_BYTES * 8;

    initial begin
        if (OUT_W < 1) $fatal(1, "%m: OUT_W (%0d) must be at least 1", OUT_W);
        if (OUT_BEATS < 1) $fatal(1, "%m: OUT_BEATS (%0d) must be at least 1", OUT_BEATS);
        if (FRAME_BYTES > 65535)
            $fatal(1, "%m: a frame of OUT_BEATS (%0d) x %0d bytes must fit in 65535 bytes", OUT_BEATS, BEAT_BYTES);
    end

    localparam logic [7:0]  SYNC        = 8'hA5;
    localparam logic [7:0]  TYPE_RESULT = 8'h81;
    localparam logic [15:0] RESULT_LEN  = 16'(FRAME_BYTES);

    localparam int BYTE_CW = BEAT_BYTES > 1 ? $clog2(BEAT_BYTES) : 1;
    localparam int BEAT_CW = OUT_BEATS > 1 ? $clog2(OUT_BEATS) : 1;

    typedef enum logic [2:0] {IDLE, HEADER, LOAD, SEND, CRC, DRAIN} state_t;

    state_t             state_reg;
    logic               has_data_reg;
    logic [7:0]         type_reg, seq_reg;
    logic [15:0]        crc_reg;
    logic               crc_lo_reg;     // in CRC: the high byte has been sent
    logic [2:0]         hdr_idx_reg;
    logic [BYTE_CW-1:0] byte_cnt_reg;
    logic [BEAT_CW-1:0] beat_cnt_reg;
    logic [BEAT_W-1:0]  beat_reg;
    logic [7:0]         out_reg;
    logic               out_valid_reg;

    // type_reg == TYPE_RESULT, byte_cnt_reg == BEAT_BYTES - 1, beat_cnt_reg == OUT_BEATS - 1:
    // registers, set beside what they compare (with the compares in the state's next value, the
    // state was five LUTs from itself: the iCEBreaker digits build's critical path, 20.8 ns)
    logic is_result, last_byte, last_beat;
    wire out_free   = !out_valid_reg || m_axis_tready;
    wire [15:0] len = is_result ? RESULT_LEN : 16'd0;

    // the byte the current state sends next, and whether it is sent this cycle
    logic [7:0] next_byte;
    always_comb begin
        case (state_reg)
            HEADER: case (hdr_idx_reg)
                3'd0:    next_byte = SYNC;
                3'd1:    next_byte = type_reg;
                3'd2:    next_byte = seq_reg;
                3'd3:    next_byte = len[7:0];
                default: next_byte = len[15:8];
            endcase
            SEND:    next_byte = beat_reg[7:0];
            default: next_byte = crc_lo_reg ? crc_reg[7:0] : crc_reg[15:8];
        endcase
    end
    wire emit = out_free && (state_reg == HEADER || state_reg == SEND || state_reg == CRC);

    wire logic [15:0] crc_next;
    crc #(.WIDTH(16), .POLY(32'h1021)) u_crc (.crc_in(crc_reg), .data(next_byte), .crc_out(crc_next));

    assign s_status_tready = state_reg == IDLE;
    assign s_axis_tready   = state_reg == LOAD || state_reg == DRAIN;
    assign m_axis_tdata    = out_reg;
    assign m_axis_tvalid   = out_valid_reg;

    always_ff @(posedge clk) begin
        if (emit) begin
            out_reg       <= next_byte;
            out_valid_reg <= 1'b1;
        end else if (m_axis_tready) begin
            out_valid_reg <= 1'b0;
        end
        // the CRC covers every byte after SYNC up to the CRC bytes themselves
        if (emit && !(state_reg == HEADER && hdr_idx_reg == 3'd0) && state_reg != CRC) crc_reg <= crc_next;

        case (state_reg)
            // the frame's counters and CRC start over in every idle cycle, not under the status
            // handshake: s_status_tvalid then steers only the status capture and the state (the
            // handshake into the CRC's multiplexer was the digits CNN's critical path, 6.6 ns)
            IDLE: begin
                hdr_idx_reg  <= '0;
                crc_reg      <= 16'hFFFF;
                crc_lo_reg   <= 1'b0;
                beat_cnt_reg <= '0;
                last_beat    <= OUT_BEATS == 1;
                if (s_status_tvalid) begin
                    {has_data_reg, type_reg, seq_reg} <= s_status_tdata;
                    is_result <= s_status_tdata[15:8] == TYPE_RESULT;
                    state_reg <= HEADER;
                end
            end
            HEADER: if (emit) begin
                hdr_idx_reg <= hdr_idx_reg + 1'b1;
                if (hdr_idx_reg == 3'd4) state_reg <= is_result ? LOAD : CRC;
            end
            LOAD: if (s_axis_tvalid) begin
                beat_reg     <= BEAT_W'(s_axis_tdata);
                byte_cnt_reg <= '0;
                last_byte    <= BEAT_BYTES == 1;
                state_reg    <= SEND;
            end
            SEND: if (emit) begin
                beat_reg     <= beat_reg >> 8;
                byte_cnt_reg <= byte_cnt_reg + 1'b1;
                last_byte    <= byte_cnt_reg == BYTE_CW'(BEAT_BYTES - 2);
                if (last_byte) begin
                    beat_cnt_reg <= beat_cnt_reg + 1'b1;
                    last_beat    <= beat_cnt_reg == BEAT_CW'(OUT_BEATS - 2);
                    state_reg    <= last_beat ? CRC : LOAD;
                end
            end
            CRC: if (emit) begin
                crc_lo_reg <= 1'b1;
                if (crc_lo_reg) begin
                    beat_cnt_reg <= '0;
                    last_beat    <= OUT_BEATS == 1;
                    state_reg    <= has_data_reg && !is_result ? DRAIN : IDLE;
                end
            end
            DRAIN: if (s_axis_tvalid) begin
                beat_cnt_reg <= beat_cnt_reg + 1'b1;
                last_beat    <= beat_cnt_reg == BEAT_CW'(OUT_BEATS - 2);
                if (last_beat) state_reg <= IDLE;
            end
            default: state_reg <= IDLE;
        endcase

        if (rst) begin
            state_reg     <= IDLE;
            out_valid_reg <= 1'b0;
        end
    end

endmodule

`resetall
