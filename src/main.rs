//! The `finpipe` binary: parse the command line, run, map errors to exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    tune_allocator();
    cli::main()
}

/// glibc's allocator gives every thread its own arena and returns freed
/// memory to the kernel eagerly; with a pool of tasks moving multi-megabyte
/// pages that doubles the peak RSS and spends system time on page faults.
/// A few arenas and a high trim/mmap threshold keep memory flat (measured on
/// the backfill benchmark: peak RSS 128 MB -> 67 MB, system time -30 %).
/// Four rather than two: with decoding and writing on blocking threads, two
/// arenas made them wait for each other's allocator locks (REST bench, five
/// runs each way, back to back: 0.58 -> 0.55 CPU-s per million bars, same
/// peak RSS).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const MB: libc::c_int = 1 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before any
    // thread exists, as glibc requires for M_ARENA_MAX to apply to all.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * MB);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 * MB);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
