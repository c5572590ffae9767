// One FFI round trip from Kotlin, measured: calls per second of small
// exported functions through JNA and the uniffi-generated code.
import org.watt.sdk.*

fun measure(name: String, calls: Int, body: (Int) -> Unit) {
    repeat(calls / 10) { body(it) } // warm up the JIT and the library
    val start = System.nanoTime()
    for (i in 0 until calls) body(i)
    val secs = (System.nanoTime() - start) / 1e9
    println("%-36s %10.0f calls/s  %7.2f µs/call".format(name, calls / secs, secs * 1e6 / calls))
}

fun main(args: Array<String>) {
    val calls = args.firstOrNull()?.toInt() ?: 200_000
    var sink = 0L
    measure("formatAmount(u64) -> String", calls) { sink += formatAmount(it.toULong()).length }
    measure("parseAmount(String) -> u64", calls) { sink += parseAmount("12.5").toLong() }
    measure("coreVersion() -> String", calls) { sink += coreVersion().length }
    measure("Kotlin-only String.format baseline", calls) { sink += "%d".format(it).length }
    if (sink == 42L) println("")
}
