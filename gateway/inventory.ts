/** The gateway's device inventory for the hub's registry: each configured field device with its bus and bus address. */
import type { InventoryDevice } from '../contract/index.js';
import type { BusConfig, GatewayConfig } from './config.js';

function endpoint(bus: BusConfig): string {
  switch (bus.type) {
    case 'modbus-tcp':
    case 'modbus-rtu-tcp':
      return `${bus.host}:${bus.port}`;
    case 'modbus-rtu':
    case 'serial-line':
      return bus.path;
    case 'opcua':
      return bus.endpointUrl;
    default:
      return '';
  }
}

/** One entry per configured device (disabled ones included, marked). */
export function inventoryOf(config: GatewayConfig): InventoryDevice[] {
  const buses = new Map(config.buses.map((b) => [b.id, b]));
  return config.devices.map((d) => {
    const bus = buses.get(d.bus);
    const where = bus ? endpoint(bus) : '';
    const modbus = bus !== undefined && (bus.type === 'modbus-tcp' || bus.type === 'modbus-rtu' || bus.type === 'modbus-rtu-tcp');
    const address = (modbus ? `unit ${d.unitId}${where ? ` @ ${where}` : ''}` : where).slice(0, 256);
    return {
      id: d.id, profile: d.profile, bus: d.bus, ...(bus ? { busType: bus.type } : {}),
      ...(address ? { address } : {}), ...(modbus ? { unitId: d.unitId } : {}), enabled: d.enabled,
    };
  });
}
