// The wallet's wrapping key, kept by the Android Keystore: a non-exportable
// AES-256-GCM key in the Keystore encrypts 32 random bytes stored in the
// app's private files; the core gets those 32 bytes and never stores them.
package org.watt.sdk.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import java.io.File
import java.security.KeyStore
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec
import org.watt.sdk.PlatformException
import org.watt.sdk.SecretKeyStore

class KeystoreKeyStore(context: Context, private val alias: String = "watt-wallet-wrapping") : SecretKeyStore {
    private val file = File(context.noBackupFilesDir, "$alias.sealed")

    @Synchronized
    override fun wrappingKey(): ByteArray = try {
        if (file.exists()) open(file.readBytes()) else ByteArray(32).also {
            SecureRandom().nextBytes(it)
            file.writeBytes(seal(it))
        }
    } catch (e: Exception) {
        throw PlatformException.Failed("Android Keystore: ${e.message}")
    }

    private fun keystoreKey(): SecretKey {
        val ks = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (ks.getKey(alias, null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build()
        )
        return gen.generateKey()
    }

    private fun seal(secret: ByteArray): ByteArray {
        val c = Cipher.getInstance("AES/GCM/NoPadding").apply { init(Cipher.ENCRYPT_MODE, keystoreKey()) }
        return byteArrayOf(c.iv.size.toByte()) + c.iv + c.doFinal(secret)
    }

    private fun open(sealed: ByteArray): ByteArray {
        val ivLen = sealed[0].toInt()
        val c = Cipher.getInstance("AES/GCM/NoPadding")
        c.init(Cipher.DECRYPT_MODE, keystoreKey(), GCMParameterSpec(128, sealed, 1, ivLen))
        return c.doFinal(sealed, 1 + ivLen, sealed.size - 1 - ivLen)
    }
}
