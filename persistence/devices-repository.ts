/**
 * Device public keys (Ed25519, raw 32 bytes), versioned: each user and device has a current
 * key, and every key it ever had stays in `device_keys` under its key id (RFC 7638 thumbprint),
 * so a signature stays verifiable with the key that made it.
 */
import type postgres from 'postgres';
import { calculateJwkThumbprint } from 'jose';

export interface DeviceKey {
  userId: string;
  deviceId: string;
  publicKey: Uint8Array;
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the key. */
  keyId: string;
  /** 1 for the device's first key, one more for each replacement. */
  version: number;
  registeredAt: Date;
  updatedAt: Date;
}

export interface KeyRef {
  keyId: string;
  version: number;
}

export interface DevicesRepository {
  /**
   * Makes `publicKey` the device's current key. The same key again changes nothing; another
   * key becomes a new version and `replaced` names the one it replaced.
   */
  register(
    userId: string,
    deviceId: string,
    publicKey: Uint8Array,
  ): Promise<{ device: DeviceKey; replaced: KeyRef | null }>;
  get(userId: string, deviceId: string): Promise<DeviceKey | null>;
}

interface Row {
  user_id: string;
  device_id: string;
  public_key: Uint8Array;
  key_id: string;
  version: number;
  registered_at: Date;
  updated_at: Date;
}

/** The RFC 7638 thumbprint of a raw Ed25519 public key. */
export function ed25519KeyId(publicKey: Uint8Array): Promise<string> {
  return calculateJwkThumbprint({
    kty: 'OKP',
    crv: 'Ed25519',
    x: Buffer.from(publicKey).toString('base64url'),
  });
}

export function createDevicesRepository(sql: postgres.Sql): DevicesRepository {
  const current = (q: postgres.Sql | postgres.TransactionSql, userId: string, deviceId: string) =>
    q<Row[]>`
      select d.user_id, d.device_id, d.public_key, k.key_id, d.key_version as version,
        d.registered_at, d.updated_at
      from devices d
      join device_keys k
        on k.user_id = d.user_id and k.device_id = d.device_id and k.version = d.key_version
      where d.user_id = ${userId} and d.device_id = ${deviceId}
    `;
  return {
    async register(userId, deviceId, publicKey) {
      const keyId = await ed25519KeyId(publicKey);
      const key = Buffer.from(publicKey);
      return sql.begin(async (tx) => {
        // Racing registrations of one device queue on its row.
        const [locked] = await tx<{ public_key: Uint8Array; key_version: number }[]>`
          select public_key, key_version from devices
          where user_id = ${userId} and device_id = ${deviceId} for update
        `;
        if (!locked) {
          await tx`
            with device as (
              insert into devices (user_id, device_id, public_key, key_version)
              values (${userId}, ${deviceId}, ${key}, 1)
            )
            insert into device_keys (user_id, device_id, version, key_id, public_key)
            values (${userId}, ${deviceId}, 1, ${keyId}, ${key})
          `;
          const [row] = await current(tx, userId, deviceId);
          return { device: toDevice(row!), replaced: null };
        }
        if (Buffer.from(locked.public_key).equals(key)) {
          const [row] = await current(tx, userId, deviceId);
          return { device: toDevice(row!), replaced: null };
        }
        const [old] = await tx<{ key_id: string }[]>`
          update device_keys set replaced_at = now()
          where user_id = ${userId} and device_id = ${deviceId} and version = ${locked.key_version}
          returning key_id
        `;
        const version = locked.key_version + 1;
        await tx`
          with added as (
            insert into device_keys (user_id, device_id, version, key_id, public_key)
            values (${userId}, ${deviceId}, ${version}, ${keyId}, ${key})
          )
          update devices set public_key = ${key}, key_version = ${version}, updated_at = now()
          where user_id = ${userId} and device_id = ${deviceId}
        `;
        const [row] = await current(tx, userId, deviceId);
        return {
          device: toDevice(row!),
          replaced: { keyId: old!.key_id, version: locked.key_version },
        };
      });
    },
    async get(userId, deviceId) {
      const [row] = await current(sql, userId, deviceId);
      return row ? toDevice(row) : null;
    },
  };
}

function toDevice(row: Row): DeviceKey {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    publicKey: new Uint8Array(row.public_key),
    keyId: row.key_id,
    version: row.version,
    registeredAt: row.registered_at,
    updatedAt: row.updated_at,
  };
}
