// fifo: first-in first-out buffer for a valid/ready stream, in flip-flops or in RAM.
//
// Function  : m_axis carries the s_axis beats unchanged and in order; up to DEPTH beats are held.
// Latency   : 2 cycles from an accepted input beat to its output beat when the FIFO was empty
//             (write into the memory, then the registered read into the output register); 3 with
//             OUT_REG (the read register, then the output register); 1 more with OUT_SLICE.
// Throughput: one beat per cycle in and out at the same time.
// Ready     : s_axis_tready is a register (the full flag); no combinational path from
//             m_axis_tready. m_axis_* are registers.
//
// Storage: a memory of DEPTH words written at the write pointer and read synchronously into an
// output register, so the memory maps onto block or distributed RAM. The beat in the output
// register counts towards DEPTH.
//
// Parameters:
//   DATA_W   width of tdata in bits (>= 1)
//   DEPTH    beats the FIFO holds (>= 2; any value, not only powers of two)
//   USE_RAM  1: let the synthesis tool map the memory to RAM (block or LUT RAM);
//            0: keep it in flip-flops (ram_style "logic"), for small or very wide FIFOs
//   OUT_REG  1: a register after the memory's read register (default with USE_RAM): a block
//            RAM's read (5.8 ns on ECP5 without its output register) then meets no logic
//   OUT_SLICE 1: a register slice (hw/skid_buffer.sv) in front of m_axis. Then the consumer's
//            ready reaches only the slice, and the FIFO's pop depends on registers alone: when
//            place and route puts the consumer far from the FIFO, no path crosses between them
//            twice (consumer state -> its ready -> the FIFO's pop -> the shared fire back to the
//            consumer). The slice holds up to 2 beats more than DEPTH.

`resetall
`timescale 1ns / 1ps
`default_nettype none

module fifo #(
    parameter int DATA_W  = 8,
    parameter int DEPTH   = 16,
    parameter bit USE_RAM = 1'b1,
    parameter bit OUT_REG = USE_RAM,
    parameter bit OUT_SLICE = 1'b0
) (
    input  wire logic              clk,
    input  wire logic              rst,

    input  wire logic [DATA_W-1:0] s_axis_tdata,
    input  wire logic              s_axis_tvalid,
    output wire logic              s_axis_tready,

    output wire logic [DATA_W-1:0] m_axis_tdata,
    output wire logic              m_axis_tvalid,
    input  wire logic              m_axis_tready
);

    if (DATA_W < 1) begin : g_bad_width
        $fatal(1, "%m: DATA_W (%0d) must be at least 1", DATA_W);
    end
    if (DEPTH < 2) begin : g_bad_depth
        $fatal(1, "%m: DEPTH (%0d) must be at least 2", DEPTH);
    end

    localparam int PTR_W = DEPTH > 1 ? $clog2(DEPTH) : 1;
    localparam int CNT_W = $clog2(DEPTH + 1);
    localparam logic [PTR_W-1:0] LAST_ADDR = PTR_W'(DEPTH - 1);

    logic [PTR_W-1:0]  wr_ptr_reg, rd_ptr_reg;
    logic [CNT_W-1:0]  count_reg;      // beats held, memory plus output register
    logic [CNT_W-1:0]  mem_count_reg;  // beats in the memory
    logic              full_reg;       // count_reg == DEPTH
    logic              held_reg;       // mem_count_reg != 0
    logic [DATA_W-1:0] out_data_reg;
    logic              out_valid_reg;

    // the FIFO's own output (the output register), before the optional slice
    logic q_tready;

    assign s_axis_tready = !full_reg;

    if (OUT_SLICE) begin : g_slice
        skid_buffer #(
            .DATA_W(DATA_W)
        ) u_slice (
            .clk(clk), .rst(rst),
            .s_axis_tdata(out_data_reg), .s_axis_tvalid(out_valid_reg), .s_axis_tready(q_tready),
            .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready)
        );
    end else begin : g_no_slice
        assign m_axis_tdata  = out_data_reg;
        assign m_axis_tvalid = out_valid_reg;
        assign q_tready      = m_axis_tready;
    end

    wire push   = s_axis_tvalid && !full_reg;
    wire pop    = out_valid_reg && q_tready;
    logic load;      // read the oldest memory word
    logic out_load;  // the output register takes a word
    logic [DATA_W-1:0] rd_data;  // what the output register takes

    if (OUT_REG) begin : g_two_stage
        // the memory's read register, then the output register (no logic between them, so a
        // block RAM's own output register can take the second; see flows/implement/outreg.py)
        logic q_valid_reg;
        assign out_load = q_valid_reg && (!out_valid_reg || q_tready);
        assign load     = held_reg && (!q_valid_reg || out_load);
        always_ff @(posedge clk) begin
            if (load) q_valid_reg <= 1'b1;
            else if (out_load) q_valid_reg <= 1'b0;
            if (rst) q_valid_reg <= 1'b0;
        end
    end else begin : g_one_stage
        // move the oldest memory word to the output register when it is empty or being emptied
        assign load     = held_reg && (!out_valid_reg || q_tready);
        assign out_load = load;
    end

    // The flags are registers whose next values are a gate or two from push, pop and load: the
    // counts are compared with constants beside, not after, their adders.
    wire almost_full = count_reg == CNT_W'(DEPTH - 1);
    wire one_held    = mem_count_reg == CNT_W'(1);
    wire two_held    = mem_count_reg > CNT_W'(1);

    // The write and the read never touch the same word in one cycle: a read needs a word in
    // the memory, and a write while the memory is full is impossible (count_reg == DEPTH).
    if (USE_RAM) begin : g_ram
        // no_rw_check: Yosys need not emulate a read and a write of one word in one cycle (the
        // bypass logic it adds otherwise sits between a block RAM and the register after it)
        (* no_rw_check *)
        logic [DATA_W-1:0] mem [DEPTH];
        always_ff @(posedge clk) begin
            if (push) mem[wr_ptr_reg] <= s_axis_tdata;
            if (load) rd_data <= mem[rd_ptr_reg];
        end
    end else begin : g_regs
        (* ram_style = "logic" *)
        logic [DATA_W-1:0] mem [DEPTH];
        always_ff @(posedge clk) begin
            if (push) mem[wr_ptr_reg] <= s_axis_tdata;
            if (load) rd_data <= mem[rd_ptr_reg];
        end
    end
    if (OUT_REG) begin : g_out_reg
        always_ff @(posedge clk) begin
            if (out_load) out_data_reg <= rd_data;
        end
    end else begin : g_out_direct
        assign out_data_reg = rd_data;
    end

    always_ff @(posedge clk) begin
        if (push) wr_ptr_reg <= wr_ptr_reg == LAST_ADDR ? '0 : wr_ptr_reg + 1'b1;
        if (load) rd_ptr_reg <= rd_ptr_reg == LAST_ADDR ? '0 : rd_ptr_reg + 1'b1;
        mem_count_reg <= mem_count_reg + CNT_W'(push) - CNT_W'(load);
        count_reg     <= count_reg + CNT_W'(push) - CNT_W'(pop);
        full_reg      <= full_reg ? !pop : almost_full && push && !pop;
        held_reg      <= push || two_held || (one_held && !load);
        if (out_load) out_valid_reg <= 1'b1;
        else if (pop) out_valid_reg <= 1'b0;

        if (rst) begin
            wr_ptr_reg    <= '0;
            rd_ptr_reg    <= '0;
            mem_count_reg <= '0;
            count_reg     <= '0;
            full_reg      <= 1'b0;
            held_reg      <= 1'b0;
            out_valid_reg <= 1'b0;
        end
    end

endmodule

`resetall
