// swift-tools-version:5.9
// The WATT SDK for iOS: the Rust core as an xcframework (scripts/build-ios.sh),
// the uniffi-generated Swift (Sources/WattFFI), and an async/await facade
// (Sources/WattSDK).
import PackageDescription

let package = Package(
    name: "WattSDK",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "WattSDK", targets: ["WattSDK"]),
    ],
    targets: [
        .binaryTarget(name: "WattFFIFFI", path: "WattFFI.xcframework"),
        .target(name: "WattFFI", dependencies: ["WattFFIFFI"], path: "Sources/WattFFI"),
        .target(name: "WattSDK", dependencies: ["WattFFI"], path: "Sources/WattSDK"),
    ]
)
