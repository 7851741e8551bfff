/** IoT Hub wire contracts shared by the device-side hub and the cloud endpoint. */
export * from './property-bag.js';
export * from './sas.js';
export * from './topics.js';
