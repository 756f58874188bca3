/** Every local listener binds loopback only: an emulator with no authentication must not face the network. */
export const LOOPBACK = '127.0.0.1'
