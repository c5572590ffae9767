plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "org.watt.sdk"
    compileSdk = 35
    defaultConfig {
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }
    sourceSets["main"].apply {
        // Plain-JVM SDK (generated bindings + facade), then the Android glue.
        kotlin.srcDirs("src/main/kotlin", "src/androidMain/kotlin")
        // Filled by scripts/build-android.sh (cargo ndk).
        jniLibs.srcDirs("src/main/jniLibs")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    packaging {
        // 16 KB page-size devices: keep .so files uncompressed and aligned.
        jniLibs.useLegacyPackaging = false
    }
}

kotlin { jvmToolchain(17) }

dependencies {
    api(libs.kotlinx.coroutines.android)
    implementation("${libs.jna.get()}@aar")
    implementation(libs.work.runtime.ktx)
    implementation(libs.core.ktx)
}
