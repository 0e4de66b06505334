/** Device public keys (Ed25519, raw 32 bytes), one per user and device. */
import type postgres from 'postgres';

export interface DeviceKey {
  userId: string;
  deviceId: string;
  publicKey: Uint8Array;
  registeredAt: Date;
  updatedAt: Date;
}

export interface DevicesRepository {
  /** Stores the key; `replaced` tells whether an earlier key was overwritten. */
  register(
    userId: string,
    deviceId: string,
    publicKey: Uint8Array,
  ): Promise<{ device: DeviceKey; replaced: boolean }>;
  get(userId: string, deviceId: string): Promise<DeviceKey | null>;
}

interface Row {
  user_id: string;
  device_id: string;
  public_key: Uint8Array;
  registered_at: Date;
  updated_at: Date;
  replaced?: boolean;
}

export function createDevicesRepository(sql: postgres.Sql): DevicesRepository {
  return {
    async register(userId, deviceId, publicKey) {
      // xmax <> 0 is true for a row that was updated by ON CONFLICT rather than inserted.
      const [row] = await sql<Row[]>`
        insert into devices (user_id, device_id, public_key)
        values (${userId}, ${deviceId}, ${Buffer.from(publicKey)})
        on conflict (user_id, device_id) do update set public_key = excluded.public_key, updated_at = now()
        returning user_id, device_id, public_key, registered_at, updated_at, (xmax <> 0) as replaced
      `;
      return { device: toDevice(row!), replaced: Boolean(row!.replaced) };
    },
    async get(userId, deviceId) {
      const [row] = await sql<Row[]>`
        select user_id, device_id, public_key, registered_at, updated_at
        from devices where user_id = ${userId} and device_id = ${deviceId}
      `;
      return row ? toDevice(row) : null;
    },
  };
}

function toDevice(row: Row): DeviceKey {
  return {
    userId: row.user_id,
    deviceId: row.device_id,
    publicKey: new Uint8Array(row.public_key),
    registeredAt: row.registered_at,
    updatedAt: row.updated_at,
  };
}
