#!/usr/bin/env node
// Generates the Zigbee2MQTT bridge's test fixtures from real device definitions.
//
// What is real: the device definitions, their `exposes` and their `fromZigbee`
// converters, loaded from zigbee-herdsman-converters at the versions Zigbee2MQTT
// 1.42.0 and 2.14.1 pin (package.json here; `npm ci` installs them). The converters
// run on synthetic Zigbee cluster messages (attribute reports, IAS zone
// notifications, Tuya datapoints, Xiaomi heartbeat structs) the way Zigbee2MQTT's
// receive extension calls them (lib/extension/receive.ts), and the results go
// through `postProcessConvertedFromZigbeeMessage` of the same package.
//
// What is emulated here, written from reading Zigbee2MQTT's source at the tags
// 1.42.0 and 2.12.1 (never copied): how Zigbee2MQTT wraps converter output into
// the MQTT messages it publishes (controller.publishEntityState: state cache,
// last_seen formats, linkquality; state.ts: properties never cached), the Home
// Assistant extension's null placeholders and action republishing
// (homeassistant.ts), availability payloads (availability.ts, utils.ts: plain
// text in 1.x with legacy_availability_payload, JSON in 2.x), the bridge/devices
// entries (bridge.ts publishDevices/getDefinitionPayload), rename and remove.
//
// Run: npm ci && node generate.mjs [--check]. Writes fixtures/<generation>.json;
// with --check it writes nothing and exits 1 when the committed fixtures differ.
// The output is deterministic: fixed times, fixed addresses, sorted keys.

import fs from "node:fs";
import {createRequire} from "node:module";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const GENERATOR_VERSION = 1;
const BASE_TOPIC = "zigbee2mqtt";
const START_MS = Date.parse("2026-03-01T10:00:00.000Z");

const GENERATIONS = [
    {
        key: "z2m1",
        zhcPackage: "zhc-z2m1",
        zigbee2mqtt: "1.42.0",
        major: 1,
    },
    {
        key: "z2m2",
        zhcPackage: "zhc-z2m2",
        zigbee2mqtt: "2.14.1",
        sourceRead: "2.12.1",
        major: 2,
    },
];

// -- a stand-in for zigbee-herdsman's Device and Endpoint --------------------------
// Only what converters and definition lookup read: ids, clusters, stored attributes.
// Named Device and Endpoint: the converters tell entities apart by constructor name.

class Endpoint {
    constructor(device, spec) {
        this.ID = spec.id;
        this.profileID = 260;
        this.deviceID = spec.deviceID ?? 0;
        this.inputClusters = spec.input;
        this.outputClusters = spec.output ?? [];
        this.binds = [];
        this.configuredReportings = [];
        this.meta = {};
        this.clusters = {};
        this._device = device;
        for (const [cluster, attributes] of Object.entries(spec.attributes ?? {})) {
            this.clusters[cluster] = {attributes: {...attributes}};
        }
    }
    get deviceIeeeAddress() {
        return this._device.ieeeAddr;
    }
    getDevice() {
        return this._device;
    }
    getInputClusters() {
        return this.inputClusters.map((name) => ({name}));
    }
    getOutputClusters() {
        return this.outputClusters.map((name) => ({name}));
    }
    supportsInputCluster(name) {
        return this.inputClusters.includes(name);
    }
    supportsOutputCluster(name) {
        return this.outputClusters.includes(name);
    }
    getClusterAttributeValue(cluster, attribute) {
        return this.clusters[cluster]?.attributes?.[attribute];
    }
    saveClusterAttributeKeyValue(cluster, values) {
        this.clusters[cluster] ??= {attributes: {}};
        Object.assign(this.clusters[cluster].attributes, values);
    }
    async read() {
        return {};
    }
    async write() {}
    async command() {}
    async bind() {}
    async configureReporting() {}
    async defaultResponse() {}
    save() {}
}

class Device {
    constructor(spec) {
        this.ieeeAddr = spec.ieee;
        this.networkAddress = spec.networkAddress;
        this.modelID = spec.modelID;
        this.manufacturerName = spec.manufacturerName;
        this.manufacturerID = spec.manufacturerID;
        this.type = spec.type ?? "EndDevice";
        this.powerSource = spec.powerSource ?? "Battery";
        this.softwareBuildID = spec.softwareBuildID;
        this.dateCode = spec.dateCode;
        this.interviewCompleted = spec.interview !== "failed";
        this.interviewing = false;
        this.interviewState = spec.interview === "failed" ? "FAILED" : "SUCCESSFUL";
        this.customClusters = {};
        this.meta = {};
        this.linkquality = undefined;
        this.lastSeen = undefined;
        this.endpoints = spec.endpoints.map((endpoint) => new Endpoint(this, endpoint));
    }
    getEndpoint(id) {
        return this.endpoints.find((endpoint) => endpoint.ID === id);
    }
    isDeviceType() {
        return false;
    }
    save() {}
}

// -- the devices ----------------------------------------------------------------------
// One or more real models per category the bridge must cover. `messages` are Zigbee
// cluster messages as zigbee-herdsman hands them to Zigbee2MQTT; `only` limits a
// device to the generations whose converters know it.

const POWER = ["genPowerCfg"];

function tuyaDp(dp, datatype, value) {
    // Tuya datapoint as herdsman parses manuSpecificTuya commandDataReport: the
    // value is a big-endian byte array (4 bytes for VALUE, 1 for BOOL/ENUM).
    const bytes = datatype === 2 ? [(value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255] : [value];
    return {dp, datatype, data: bytes};
}

const DEVICES = [
    {
        key: "contact_aqara",
        category: "contact",
        friendly_name: "hall/front door",
        ieee: "0x00158d0001a1c001",
        modelID: "lumi.sensor_magnet.aq2",
        manufacturerName: "LUMI",
        endpoints: [{id: 1, input: ["genBasic", "genIdentify", "genOnOff"]}],
        messages: [
            {cluster: "genBasic", type: "attributeReport", data: {65281: {1: 3005, 3: 23, 4: 5032, 5: 9, 6: 5, 10: 0}}},
            {cluster: "genOnOff", type: "attributeReport", data: {onOff: 1}},
            {cluster: "genOnOff", type: "attributeReport", data: {onOff: 0}},
        ],
    },
    {
        key: "contact_sonoff",
        category: "contact",
        friendly_name: "garage/side door",
        ieee: "0x00124b0022c0a002",
        modelID: "DS01",
        manufacturerName: "eWeLink",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "ssIasZone"]}],
        messages: [
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 182, batteryVoltage: 29}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 1, extendedstatus: 0}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 0, extendedstatus: 0}},
        ],
    },
    {
        key: "motion_hue",
        category: "occupancy",
        friendly_name: "hallway motion",
        ieee: "0x001788010b1c0003",
        modelID: "SML001",
        manufacturerName: "Signify Netherlands B.V.",
        endpoints: [
            {id: 1, input: ["genBasic"], output: ["genBasic", "genIdentify", "genGroups", "genOnOff", "genLevelCtrl", "genScenes"]},
            {id: 2, input: ["genBasic", "genPowerCfg", "genIdentify", "msIlluminanceMeasurement", "msTemperatureMeasurement", "msOccupancySensing"], output: ["genOta"]},
        ],
        messageEndpoint: 2,
        messages: [
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 170}},
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 2148}},
            {cluster: "msIlluminanceMeasurement", type: "attributeReport", data: {measuredValue: 21761}},
            {cluster: "msOccupancySensing", type: "attributeReport", data: {occupancy: 1}},
            {cluster: "msOccupancySensing", type: "attributeReport", data: {occupancy: 0}},
        ],
    },
    {
        // Zigbee2MQTT 2.x renamed this model (RFPR-ZB-SH-EU -> BSEN-M): same IEEE address.
        key: "motion_bosch",
        category: "occupancy",
        friendly_name: "office/motion",
        ieee: "0x00155f00fe0a0004",
        modelID: "RFPR-ZB-SH-EU",
        manufacturerName: "Bosch",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "genPollCtrl", "msTemperatureMeasurement", "ssIasZone"]}],
        messages: [
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 1975}},
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryVoltage: 29}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 1, extendedstatus: 0}},
        ],
    },
    {
        key: "radar_aqara_fp1",
        category: "presence",
        friendly_name: "living/presence fp1",
        ieee: "0x54ef441000a10005",
        modelID: "lumi.motion.ac01",
        manufacturerName: "aqara",
        powerSource: "Mains (single phase)",
        type: "Router",
        endpoints: [{id: 1, input: ["genBasic", "genIdentify", "manuSpecificLumi"]}],
        messages: [
            {cluster: "manuSpecificLumi", type: "attributeReport", data: {322: 1, 323: 0}},
            {cluster: "manuSpecificLumi", type: "attributeReport", data: {322: 0, 323: 1}},
        ],
    },
    {
        key: "radar_tuya",
        category: "presence",
        friendly_name: "kitchen/radar",
        ieee: "0xa4c138f0e0b10006",
        modelID: "TS0601",
        manufacturerName: "_TZE200_ztc6ggyl",
        powerSource: "Mains (single phase)",
        type: "Router",
        endpoints: [{id: 1, input: ["genBasic", "genGroups", "genScenes", "manuSpecificTuya"], output: ["genOta", "genTime"]}],
        messages: [
            // The converter reads the first datapoint of a report: one per message.
            {cluster: "manuSpecificTuya", type: "commandDataReport", data: {seq: 1, dpValues: [tuyaDp(104, 2, 312)]}},
            {cluster: "manuSpecificTuya", type: "commandDataReport", data: {seq: 2, dpValues: [tuyaDp(1, 4, 1)]}},
            {cluster: "manuSpecificTuya", type: "commandDataReport", data: {seq: 3, dpValues: [tuyaDp(9, 2, 143)]}},
            {cluster: "manuSpecificTuya", type: "commandDataReport", data: {seq: 4, dpValues: [tuyaDp(1, 4, 0)]}},
        ],
    },
    {
        key: "climate_aqara",
        category: "temperature_humidity",
        friendly_name: "bedroom/climate",
        ieee: "0x00158d0002b3c007",
        modelID: "lumi.weather",
        manufacturerName: "LUMI",
        endpoints: [{id: 1, input: ["genBasic", "genIdentify", "msTemperatureMeasurement", "msRelativeHumidity", "msPressureMeasurement"], attributes: {msPressureMeasurement: {scale: -1}}}],
        messages: [
            {cluster: "genBasic", type: "attributeReport", data: {65281: {1: 2985, 4: 5117, 5: 3, 100: 2161, 101: 4825, 102: 100830, 10: 0}}},
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 2163}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 4812}},
            {cluster: "msPressureMeasurement", type: "attributeReport", data: {measuredValue: 1008, scaledValue: 10083}},
        ],
    },
    {
        key: "climate_sonoff",
        category: "temperature_humidity",
        friendly_name: "Cellar TH",
        ieee: "0x00124b0024c1d008",
        modelID: "TH01",
        manufacturerName: "eWeLink",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "msTemperatureMeasurement", "msRelativeHumidity"]}],
        messages: [
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 200, batteryVoltage: 30}},
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 1204}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 7710}},
        ],
    },
    {
        // Pressure in kPa where the Aqara sensor says hPa.
        key: "climate_yandex",
        category: "temperature_humidity",
        friendly_name: "balcony/weather",
        ieee: "0x70ac08fffe3d0009",
        modelID: "YNDX-00529",
        manufacturerName: "Yandex",
        only: ["z2m2"],
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "msTemperatureMeasurement", "msRelativeHumidity", "msPressureMeasurement"]}],
        messages: [
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: -315}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 8920}},
            {cluster: "msPressureMeasurement", type: "attributeReport", data: {measuredValue: 1021}},
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 160, batteryVoltage: 29}},
        ],
    },
    {
        // A friendly name that is a prefix of another's ("classroom 3/voc").
        key: "co2_heiman",
        category: "air_quality",
        friendly_name: "classroom 3",
        ieee: "0x0015bc001b02000a",
        modelID: "HS3AQ-EFA-3.0",
        manufacturerName: "HEIMAN",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "msTemperatureMeasurement", "msRelativeHumidity", "msCO2"]}],
        messages: [
            {cluster: "msCO2", type: "attributeReport", data: {measuredValue: 0.000842}},
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 2250}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 5230}},
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 190}},
        ],
    },
    {
        key: "voc_aqara",
        category: "air_quality",
        friendly_name: "classroom 3/voc",
        ieee: "0x54ef441000b2000b",
        modelID: "lumi.airmonitor.acn01",
        manufacturerName: "LUMI",
        endpoints: [
            {id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "msTemperatureMeasurement", "msRelativeHumidity", "genAnalogInput", "manuSpecificLumi"]},
        ],
        messages: [
            {cluster: "genAnalogInput", type: "attributeReport", data: {presentValue: 187}},
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 2310}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 4410}},
        ],
    },
    {
        key: "leak_aqara",
        category: "water_leak",
        friendly_name: "boiler room/leak",
        ieee: "0x00158d0003c4000c",
        modelID: "lumi.sensor_wleak.aq1",
        manufacturerName: "LUMI",
        endpoints: [{id: 1, input: ["genBasic", "genIdentify", "ssIasZone"]}],
        messages: [
            {cluster: "genBasic", type: "attributeReport", data: {65281: {1: 3015, 3: 19, 4: 5032, 5: 2, 10: 0}}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 1, extendedstatus: 0}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 0, extendedstatus: 0}},
        ],
    },
    {
        // Zigbee2MQTT 2.x renamed this model too (BWA-1 -> BSEN-W) and changed its exposes.
        key: "leak_bosch",
        category: "water_leak",
        friendly_name: "kitchen/sink leak",
        ieee: "0x00155f00fe0b000d",
        modelID: "RBSH-WS-ZB-EU",
        manufacturerName: "Bosch",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "genPollCtrl", "ssIasZone", "boschSpecific"]}],
        messages: [
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 1, extendedstatus: 0}},
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 200}},
        ],
    },
    {
        key: "smoke_heiman",
        category: "smoke",
        friendly_name: "corridor/smoke",
        ieee: "0x000d6f0011e2000e",
        modelID: "SmokeSensor-EM",
        manufacturerName: "HEIMAN",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "ssIasZone", "ssIasWd"]}],
        messages: [
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 176}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 1, extendedstatus: 0}},
            {cluster: "ssIasZone", type: "commandStatusChangeNotification", data: {zonestatus: 0, extendedstatus: 0}},
        ],
    },
    {
        key: "plug_tuya",
        category: "plug",
        friendly_name: "lab/plug 1",
        ieee: "0xa4c1383d5f10000f",
        modelID: "TS011F",
        manufacturerName: "_TZ3000_okaz9tjs",
        powerSource: "Mains (single phase)",
        type: "Router",
        endpoints: [
            {
                id: 1,
                input: ["genBasic", "genIdentify", "genGroups", "genScenes", "genOnOff", "seMetering", "haElectricalMeasurement", "manuSpecificTuya_3"],
                output: ["genOta", "genTime"],
                attributes: {
                    haElectricalMeasurement: {acVoltageMultiplier: 1, acVoltageDivisor: 1, acCurrentMultiplier: 1, acCurrentDivisor: 1000, acPowerMultiplier: 1, acPowerDivisor: 1},
                    seMetering: {multiplier: 1, divisor: 100},
                },
            },
        ],
        messages: [
            {cluster: "genOnOff", type: "attributeReport", data: {onOff: 1}},
            {cluster: "haElectricalMeasurement", type: "attributeReport", data: {rmsVoltage: 231, rmsCurrent: 412, activePower: 87}},
            {cluster: "seMetering", type: "attributeReport", data: {currentSummDelivered: 123456}},
        ],
    },
    {
        key: "plug_innr",
        category: "plug",
        friendly_name: "lab/plug 2",
        ieee: "0x00158d00045e0010",
        modelID: "SP 120",
        manufacturerName: "innr",
        powerSource: "Mains (single phase)",
        type: "Router",
        endpoints: [
            {
                id: 1,
                input: ["genBasic", "genIdentify", "genGroups", "genScenes", "genOnOff", "seMetering", "haElectricalMeasurement"],
                output: ["genOta", "genTime"],
                attributes: {
                    haElectricalMeasurement: {acVoltageMultiplier: 1, acVoltageDivisor: 1, acCurrentMultiplier: 1, acCurrentDivisor: 1000, acPowerMultiplier: 1, acPowerDivisor: 1},
                    seMetering: {multiplier: 1, divisor: 1000},
                },
            },
        ],
        messages: [
            {cluster: "genOnOff", type: "attributeReport", data: {onOff: 1}},
            {cluster: "haElectricalMeasurement", type: "attributeReport", data: {activePower: 1843, rmsCurrent: 8012, rmsVoltage: 229}},
            {cluster: "seMetering", type: "attributeReport", data: {currentSummDelivered: 4520315}},
            {cluster: "genOnOff", type: "attributeReport", data: {onOff: 0}},
        ],
    },
    {
        key: "button_aqara",
        category: "action",
        friendly_name: "desk/button",
        ieee: "0x00158d0005a60011",
        modelID: "lumi.sensor_switch.aq2",
        manufacturerName: "LUMI",
        endpoints: [{id: 1, input: ["genBasic", "genOnOff", "genMultistateInput"]}],
        messages: [
            {cluster: "genOnOff", type: "attributeReport", data: {32768: 1}},
            {cluster: "genOnOff", type: "attributeReport", data: {32768: 2}},
            {cluster: "genBasic", type: "attributeReport", data: {65281: {1: 3042, 3: 22, 5: 1}}},
        ],
    },
    {
        key: "remote_ikea",
        category: "action",
        friendly_name: "Meeting Room/Remote",
        ieee: "0x000b57fffe8a0012",
        modelID: "TRADFRI on/off switch",
        manufacturerName: "IKEA of Sweden",
        softwareBuildID: "2.3.079",
        dateCode: "20190308",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "genIdentify", "genAlarms", "genPollCtrl"], output: ["genIdentify", "genGroups", "genOnOff", "genLevelCtrl", "genOta"]}],
        messages: [
            {cluster: "genOnOff", type: "commandOn", data: {}},
            {cluster: "genOnOff", type: "commandOff", data: {}},
            {cluster: "genPowerCfg", type: "attributeReport", data: {batteryPercentageRemaining: 114}},
        ],
    },
    {
        // No definition knows this model: Zigbee2MQTT generates one from its clusters
        // and reports it as supported: false.
        key: "unsupported_generated",
        category: "unsupported",
        friendly_name: "0x00124b00226f0013",
        ieee: "0x00124b00226f0013",
        modelID: "ACME-THS-9000",
        manufacturerName: "Acme Sensors",
        endpoints: [{id: 1, input: ["genBasic", "genPowerCfg", "msTemperatureMeasurement", "msRelativeHumidity"]}],
        messages: [
            {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: 1887}},
            {cluster: "msRelativeHumidity", type: "attributeReport", data: {measuredValue: 6011}},
        ],
    },
    {
        // The interview failed before the model was read: no definition at all.
        key: "interview_failed",
        category: "unsupported",
        friendly_name: "0x84fd27fffe0c0014",
        ieee: "0x84fd27fffe0c0014",
        modelID: undefined,
        manufacturerName: undefined,
        interview: "failed",
        endpoints: [{id: 1, input: ["genBasic"]}],
        messages: [],
    },
];

const COORDINATOR = {
    ieee: "0x00124b0029a1b2c3",
    networkAddress: 0,
    type: "Coordinator",
    endpoints: [{id: 1, input: ["genBasic", "genIdentify", "genOnOff", "genTime", "genOta", "lightingColorCtrl"], output: ["genBasic", "genIdentify", "genOnOff"]}],
};

const GROUP = {id: 1, friendly_name: "living/lights", members: [{ieee_address: "0x54ef441000a10005", endpoint: 1}]};

// -- Zigbee2MQTT, as it publishes ----------------------------------------------------

// state.ts: what Zigbee2MQTT never keeps in its state cache (so never repeats).
const CACHE_IGNORE = {
    1: ["action", "action_.*", "button", "button_left", "button_right", "click", "forgotten", "keyerror", "step_size", "transition_time", "group_list", "group_capacity", "no_occupancy_since", "step_mode", "duration", "elapsed", "from_side", "to_side"],
    2: ["action", "action_.*", "button", "button_left", "button_right", "forgotten", "keyerror", "step_size", "transition_time", "group_list", "group_capacity", "no_occupancy_since", "step_mode", "duration", "elapsed", "from_side", "to_side", "illuminance_lux"],
};

function twoDigits(value) {
    return String(Math.floor(Math.abs(value))).padStart(2, "0");
}

// utils.ts formatDate's "ISO_8601_local": local wall time, no milliseconds, +hh:mm.
function localIso(ms, timeZone) {
    const parts = Object.fromEntries(
        new Intl.DateTimeFormat("en-CA", {timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"})
            .formatToParts(new Date(ms))
            .map((part) => [part.type, part.value]),
    );
    const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
    const offsetMinutes = Math.round((wall - Math.floor(ms / 1000) * 1000) / 60000);
    const sign = offsetMinutes >= 0 ? "+" : "-";
    return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${sign}${twoDigits(offsetMinutes / 60)}:${twoDigits(offsetMinutes % 60)}`;
}

function formatLastSeen(ms, format) {
    switch (format.kind) {
        case "ISO_8601":
            return new Date(ms).toISOString();
        case "ISO_8601_local":
            return localIso(ms, format.timeZone);
        case "epoch":
            return ms;
        case "relative":
            return "less than a minute ago";
        default:
            return undefined;
    }
}

function sortedJson(value) {
    // json-stable-stringify's key order: Zigbee2MQTT publishes with it.
    if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : sortedJson(item))).join(",")}]`;
    if (value !== null && typeof value === "object") {
        const body = Object.keys(value)
            .sort()
            .filter((key) => value[key] !== undefined && typeof value[key] !== "function")
            .map((key) => `${JSON.stringify(key)}:${sortedJson(value[key])}`);
        return `{${body.join(",")}}`;
    }
    return JSON.stringify(value);
}

function plain(value) {
    // Expose objects are class instances: Zigbee2MQTT serialises their own fields.
    return JSON.parse(JSON.stringify(value));
}

class Zigbee2mqtt {
    constructor(generation, zhc) {
        this.generation = generation;
        this.zhc = zhc;
        this.devices = new Map();
        this.state = new Map();
        this.clock = START_MS;
        this.settings = {last_seen: {kind: "ISO_8601"}, homeassistant: false, legacyActionSensor: false};
        this.mockProperties = new Map();
    }

    get v1() {
        return this.generation.major === 1;
    }

    nextTransaction() {
        // Converters drop a repeated ZCL transaction number as a duplicate delivery.
        this.transaction = ((this.transaction ?? 0) + 1) % 256;
        return this.transaction;
    }

    async add(spec) {
        const zh = new Device(spec);
        zh.linkquality = 120 + (Number.parseInt(spec.ieee.slice(-2), 16) % 100);
        const definition = spec.interview === "failed" ? undefined : await this.zhc.findByDevice(zh, true);
        const device = {spec, zh, definition, friendlyName: spec.friendly_name};
        this.devices.set(spec.ieee, device);
        return device;
    }

    tick(ms = 1000) {
        this.clock += ms;
        return this.clock;
    }

    availabilityPayload(state) {
        return this.v1 ? state : JSON.stringify({state});
    }

    exposes(device) {
        const {definition, zh} = device;
        const exposes = typeof definition.exposes === "function" ? definition.exposes(zh, {}) : [...definition.exposes];
        if (!this.v1) {
            // 2.x: lib/model/device.ts appends linkquality to every definition's exposes.
            exposes.push({type: "numeric", name: "linkquality", property: "linkquality", access: 1, unit: "lqi", description: "Link quality (signal strength)", value_min: 0, value_max: 255, category: "diagnostic", label: "Linkquality"});
        }
        return plain(exposes);
    }

    definitionPayload(device) {
        const {definition} = device;
        if (!definition) return this.settings.definitionNull ? null : undefined;
        const payload = {
            model: definition.model,
            vendor: definition.vendor,
            description: definition.description,
            exposes: this.exposes(device),
            supports_ota: !!definition.ota,
            options: plain(definition.options ?? []),
            icon: undefined,
        };
        if (!this.v1) {
            payload.source = definition.generated ? "generated" : "native";
            payload.version = definition.version;
        }
        return payload;
    }

    bridgeDevices() {
        const entries = [];
        const coordinator = new Device(COORDINATOR);
        const all = [{spec: COORDINATOR, zh: coordinator, definition: undefined, friendlyName: "Coordinator"}, ...this.devices.values()];
        for (const device of all) {
            const {zh} = device;
            const endpoints = {};
            for (const endpoint of zh.endpoints) {
                endpoints[endpoint.ID] = {
                    bindings: [],
                    clusters: {input: endpoint.inputClusters, output: endpoint.outputClusters},
                    configured_reportings: [],
                    scenes: [],
                };
                if (!this.v1) endpoints[endpoint.ID].name = undefined;
            }
            const supported = zh.type === "Coordinator" || Boolean(device.definition && !device.definition.generated);
            const entry = {
                ieee_address: zh.ieeeAddr,
                type: zh.type,
                network_address: zh.networkAddress,
                supported,
                friendly_name: device.friendlyName,
                disabled: false,
                description: undefined,
                definition: zh.type === "Coordinator" ? (this.settings.definitionNull ? null : undefined) : this.definitionPayload(device),
                power_source: zh.powerSource,
                software_build_id: zh.softwareBuildID,
                date_code: zh.dateCode,
                model_id: zh.modelID,
                interviewing: false,
                interview_completed: zh.interviewCompleted,
                manufacturer: zh.manufacturerName,
                endpoints,
            };
            if (!this.v1) entry.interview_state = zh.interviewState;
            entries.push(entry);
        }
        return entries;
    }

    bridgeGroups() {
        return [{description: undefined, friendly_name: GROUP.friendly_name, id: GROUP.id, members: GROUP.members, scenes: []}];
    }

    bridgeInfo() {
        return {
            version: this.generation.zigbee2mqtt,
            commit: "unknown",
            zigbee_herdsman_converters: {version: this.generation.zhcVersion},
            permit_join: false,
            log_level: "info",
            restart_required: false,
            config: {mqtt: {base_topic: BASE_TOPIC}, advanced: {last_seen: this.settings.last_seen.kind, legacy_availability_payload: this.v1, cache_state: true, output: "json"}},
        };
    }

    // lib/extension/receive.ts: the matching converters, merged, post-processed.
    async convert(device, message) {
        const {definition, zh} = device;
        const endpoint = zh.getEndpoint(device.spec.messageEndpoint ?? zh.endpoints[0].ID);
        const data = {type: message.type, cluster: message.cluster, data: message.data, endpoint, device: zh, linkquality: zh.linkquality, groupID: 0, meta: {zclTransactionSequenceNumber: this.nextTransaction(), manufacturerCode: null, frameControl: {}}};
        const converters = definition.fromZigbee.filter((c) => (Array.isArray(c.type) ? c.type.includes(message.type) : c.type === message.type) && c.cluster === message.cluster);
        const options = {};
        const meta = {device: zh, logger: quietLogger, state: this.state.get(zh.ieeeAddr) ?? {}, deviceExposesChanged() {}};
        let payload = {};
        for (const converter of converters) {
            const converted = await converter.convert(definition, data, () => {}, options, meta);
            if (converted) payload = {...payload, ...converted};
        }
        if (Object.keys(payload).length === 0) return payload;
        if (this.v1) this.zhc.postProcessConvertedFromZigbeeMessage(definition, payload, options);
        else this.zhc.postProcessConvertedFromZigbeeMessage(definition, payload, options, zh);
        return payload;
    }

    // controller.ts publishEntityState + state.ts set + the Home Assistant extension.
    entityState(device, update) {
        const ignore = CACHE_IGNORE[this.generation.major].map((pattern) => new RegExp(`^${pattern}$`));
        const previous = this.state.get(device.zh.ieeeAddr) ?? {};
        const message = {...previous, ...update};
        const cached = Object.fromEntries(Object.entries(message).filter(([key]) => !ignore.some((re) => re.test(key))));
        this.state.set(device.zh.ieeeAddr, cached);
        const lastSeen = formatLastSeen(device.zh.lastSeen, this.settings.last_seen);
        if (lastSeen !== undefined) message.last_seen = lastSeen;
        if (device.zh.linkquality !== undefined) message.linkquality = device.zh.linkquality;
        if (this.settings.homeassistant && device.definition) {
            // adjustMessageBeforePublish: every discovered property the message lacks is null.
            for (const expose of this.exposes(device)) {
                const property = expose.property ?? expose.features?.[0]?.property;
                if (property && message[property] === undefined && (expose.access ?? 1) & 1) message[property] = null;
            }
        }
        return message;
    }

    stateMessages(device, update, note) {
        const messages = [];
        const message = this.entityState(device, update);
        messages.push(publish(device.friendlyName, sortedJson(message), {note, at: this.clock}));
        if (this.settings.homeassistant && device.definition) {
            const keys = (this.v1 ? ["action", "click"] : ["action"]).filter((key) => update[key]);
            for (const key of keys) {
                // Device trigger: the bare value on <name>/action, for Home Assistant.
                messages.push(publish(`${device.friendlyName}/${key}`, String(update[key]), {note: "Home Assistant device trigger", at: this.clock}));
            }
            if (this.v1 || this.settings.legacyActionSensor) {
                for (const key of keys) {
                    const cleared = this.entityState(device, {[key]: ""});
                    messages.push(publish(device.friendlyName, sortedJson(cleared), {note: `Home Assistant clears ${key}`, at: this.clock}));
                }
            }
        }
        return messages;
    }

    async deviceMessage(device, message, note) {
        device.zh.lastSeen = this.tick();
        const payload = await this.convert(device, message);
        if (Object.keys(payload).length === 0) return [];
        return this.stateMessages(device, payload, note ?? `${message.cluster} ${message.type}`);
    }
}

const quietLogger = {debug() {}, info() {}, warning() {}, warn() {}, error() {}};

function publish(topic, payload, {retain = false, qos = 0, note, at} = {}) {
    return {topic: `${BASE_TOPIC}/${topic}`, payload, retain, qos, note, at: new Date(at ?? START_MS).toISOString()};
}

// -- scenarios -------------------------------------------------------------------------

async function startup(z2m, devices) {
    const out = [];
    const at = z2m.clock;
    out.push(publish("bridge/state", z2m.availabilityPayload("online"), {retain: true, qos: z2m.v1 ? 0 : 1, at, note: "bridge online"}));
    out.push(publish("bridge/info", sortedJson(z2m.bridgeInfo()), {retain: true, at}));
    out.push(publish("bridge/devices", sortedJson(z2m.bridgeDevices()), {retain: true, at}));
    out.push(publish("bridge/groups", sortedJson(z2m.bridgeGroups()), {retain: true, at}));
    for (const device of devices) {
        out.push(publish(`${device.friendlyName}/availability`, z2m.availabilityPayload("online"), {retain: true, qos: 1, at}));
    }
    for (const device of devices) {
        if (!device.definition) continue;
        for (const message of device.spec.messages) {
            out.push(...(await z2m.deviceMessage(device, message)));
        }
    }
    return out;
}

async function lastSeenFormats(z2m, device) {
    const formats = [
        {kind: "ISO_8601"},
        {kind: "ISO_8601_local", timeZone: "Europe/Amsterdam"},
        {kind: "ISO_8601_local", timeZone: "Asia/Kolkata"},
        {kind: "ISO_8601_local", timeZone: "America/New_York"},
        {kind: "epoch"},
        {kind: "disable"},
        {kind: "relative"},
    ];
    const out = [];
    const saved = z2m.settings.last_seen;
    let value = 2100;
    for (const format of formats) {
        z2m.settings.last_seen = format;
        value += 7;
        const label = format.timeZone ? `${format.kind} ${format.timeZone}` : format.kind;
        out.push(...(await z2m.deviceMessage(device, {cluster: "msTemperatureMeasurement", type: "attributeReport", data: {measuredValue: value}}, `last_seen ${label}`)));
    }
    z2m.settings.last_seen = saved;
    return out;
}

async function homeAssistant(z2m, devices) {
    z2m.settings.homeassistant = true;
    z2m.settings.legacyActionSensor = true;
    const out = [];
    for (const device of devices) {
        for (const message of device.spec.messages.slice(0, 2)) {
            out.push(...(await z2m.deviceMessage(device, message)));
        }
    }
    z2m.settings.homeassistant = false;
    z2m.settings.legacyActionSensor = false;
    return out;
}

async function rename(z2m, device, to) {
    const from = device.friendlyName;
    const out = [];
    const at = z2m.tick();
    out.push(publish("bridge/request/device/rename", sortedJson({from, to, transaction: "rn-1"}), {at, note: "a client asks"}));
    out.push(publish(from, "", {retain: true, at, note: "old state topic cleared"}));
    device.friendlyName = to;
    out.push(publish(`${from}/availability`, "", {retain: true, qos: 1, at, note: "old availability cleared"}));
    out.push(publish(`${to}/availability`, z2m.availabilityPayload("online"), {retain: true, qos: 1, at}));
    out.push(publish("bridge/devices", sortedJson(z2m.bridgeDevices()), {retain: true, at}));
    out.push(publish("bridge/info", sortedJson(z2m.bridgeInfo()), {retain: true, at}));
    out.push(...z2m.stateMessages(device, {}, "state republished under the new name"));
    out.push(publish("bridge/response/device/rename", sortedJson({data: {from, homeassistant_rename: false, to}, status: "ok", transaction: "rn-1"}), {at}));
    out.push(...(await z2m.deviceMessage(device, device.spec.messages.at(-1), "state under the new name")));
    return out;
}

async function remove(z2m, device) {
    const name = device.friendlyName;
    const out = [];
    const at = z2m.tick();
    out.push(publish("bridge/request/device/remove", sortedJson({id: name, transaction: "rm-1"}), {at, note: "a client asks"}));
    out.push(publish(`${name}/availability`, "", {retain: true, qos: 1, at, note: "availability cleared"}));
    out.push(publish(name, "", {retain: true, at, note: "state cleared"}));
    z2m.devices.delete(device.zh.ieeeAddr);
    out.push(publish("bridge/groups", sortedJson(z2m.bridgeGroups()), {retain: true, at}));
    out.push(publish("bridge/devices", sortedJson(z2m.bridgeDevices()), {retain: true, at}));
    out.push(publish("bridge/response/device/remove", sortedJson({data: {block: false, force: false, id: name}, status: "ok", transaction: "rm-1"}), {at}));
    return out;
}

async function stateBeforeDevices(z2m, spec) {
    // With mqtt.force_disable_retain (or a subscriber that connects at the wrong
    // moment) state arrives before any bridge/devices that describes the device.
    const device = await z2m.add(spec);
    const out = [];
    out.push(publish("bridge/event", sortedJson({data: {friendly_name: spec.ieee, ieee_address: spec.ieee}, type: "device_joined"}), {at: z2m.tick()}));
    for (const message of spec.messages) {
        out.push(...(await z2m.deviceMessage(device, message, "before bridge/devices")));
    }
    out.push(publish("bridge/event", sortedJson({data: {definition: z2m.definitionPayload(device), friendly_name: spec.ieee, ieee_address: spec.ieee, status: "successful", supported: true}, type: "device_interview"}), {at: z2m.tick()}));
    out.push(publish("bridge/devices", sortedJson(z2m.bridgeDevices()), {retain: false, at: z2m.clock, note: "force_disable_retain: not retained"}));
    return out;
}

function noise(z2m, device) {
    const name = device.friendlyName;
    const at = z2m.tick();
    const out = [
        publish(`${name}/set`, sortedJson({state: "ON"}), {at}),
        publish(`${name}/set/state`, "OFF", {at}),
        publish(`${name}/get`, sortedJson({state: ""}), {at}),
        publish("bridge/request/permit_join", sortedJson(z2m.v1 ? {value: true, time: 60} : {time: 60}), {at}),
        publish("bridge/response/permit_join", sortedJson({data: {time: 60}, status: "ok"}), {at}),
        publish("bridge/request/device/options", sortedJson({id: name, options: {retain: false}}), {at}),
        publish("bridge/response/device/options", sortedJson({data: {}, error: "Device 'x' does not exist", status: "error"}), {at}),
        publish("bridge/event", sortedJson({data: {friendly_name: name, ieee_address: device.zh.ieeeAddr}, type: "device_announce"}), {at}),
        publish(GROUP.friendly_name, sortedJson({state: "ON", brightness: 254}), {at, note: "group state"}),
        publish(`${GROUP.friendly_name}/set`, sortedJson({state: "OFF"}), {at}),
        publish(`${name}/temperature`, "21.5", {at, note: "output: attribute"}),
    ];
    if (z2m.v1) {
        out.push(publish("bridge/log", sortedJson({message: "Device 'x' joined", type: "device_connected"}), {at}));
        out.push(publish("bridge/config", sortedJson({log_level: "info", permit_join: false}), {retain: true, at}));
    } else {
        out.push(publish("bridge/logging", sortedJson({level: "info", message: "MQTT publish", namespace: "z2m"}), {at}));
        out.push(publish("bridge/definitions", sortedJson({clusters: {}, custom_clusters: {}}), {retain: true, at}));
        out.push(publish("bridge/extensions", "[]", {retain: true, at}));
        out.push(publish("bridge/health", sortedJson({healthy: true, response_time: START_MS}), {at}));
    }
    return out;
}

function bridgeRestart(z2m, devices) {
    const out = [];
    out.push(publish("bridge/state", z2m.availabilityPayload("offline"), {retain: true, qos: 1, at: z2m.tick(), note: "last will: bridge offline"}));
    const at = z2m.tick(30_000);
    out.push(publish("bridge/state", z2m.availabilityPayload("online"), {retain: true, qos: z2m.v1 ? 0 : 1, at, note: "bridge back"}));
    for (const device of devices) {
        const state = device.spec.key === "climate_sonoff" ? "offline" : "online";
        out.push(publish(`${device.friendlyName}/availability`, z2m.availabilityPayload(state), {retain: true, qos: 1, at}));
    }
    return out;
}

// -- the run -------------------------------------------------------------------------

async function generate(generation) {
    const zhc = require(generation.zhcPackage);
    zhc.setLogger(quietLogger);
    generation.zhcVersion = require(`${generation.zhcPackage}/package.json`).version;
    const z2m = new Zigbee2mqtt(generation, zhc);
    const specs = DEVICES.filter((spec) => !spec.only || spec.only.includes(generation.key));
    const late = specs.find((spec) => spec.key === "climate_sonoff");
    const devices = [];
    for (const spec of specs) {
        if (spec !== late) devices.push(await z2m.add(spec));
    }
    const byKey = (key) => devices.find((device) => device.spec.key === key);
    const scenarios = {};
    scenarios.startup = await startup(z2m, devices);
    scenarios.last_seen = await lastSeenFormats(z2m, byKey("climate_aqara"));
    scenarios.homeassistant = await homeAssistant(z2m, [byKey("contact_aqara"), byKey("button_aqara"), byKey("remote_ikea"), byKey("plug_tuya")]);
    scenarios.state_before_devices = await stateBeforeDevices(z2m, late);
    devices.push(byKeyIn(z2m, late.key));
    scenarios.noise = noise(z2m, byKey("plug_tuya"));
    scenarios.bridge_restart = bridgeRestart(z2m, [...z2m.devices.values()]);
    scenarios.rename = await rename(z2m, byKey("contact_aqara"), "entrance/front door");
    scenarios.remove = await remove(z2m, byKey("smoke_heiman"));
    // The definition: null form of Zigbee2MQTT 1.17 to 1.34 (getDefinitionPayload returned null).
    const bridgeDevicesDefinitionNull = (() => {
        if (!z2m.v1) return undefined;
        z2m.settings.definitionNull = true;
        const entries = z2m.bridgeDevices();
        z2m.settings.definitionNull = false;
        return JSON.parse(sortedJson(entries));
    })();

    const catalogue = {};
    for (const spec of specs) {
        const device = [...z2m.devices.values(), ...devices].find((d) => d.spec === spec);
        catalogue[spec.key] = {
            category: spec.category,
            ieee_address: spec.ieee,
            friendly_name: spec.friendly_name,
            model: device?.definition?.model ?? null,
            vendor: device?.definition?.vendor ?? null,
            supported: Boolean(device?.definition && !device.definition.generated),
        };
    }
    const fixture = {
        generator: {
            version: GENERATOR_VERSION,
            zigbee2mqtt: generation.zigbee2mqtt,
            zigbee2mqtt_source_read: generation.sourceRead ?? generation.zigbee2mqtt,
            zigbee_herdsman_converters: generation.zhcVersion,
        },
        base_topic: BASE_TOPIC,
        start: new Date(START_MS).toISOString(),
        devices: catalogue,
        scenarios,
        unit_census: await unitCensus(generation, zhc),
    };
    if (bridgeDevicesDefinitionNull) fixture.bridge_devices_definition_null = bridgeDevicesDefinitionNull;
    return fixture;
}

// Every unit each numeric property has across all definitions of the package: what
// the bridge's unit table must be able to take.
async function unitCensus(generation, zhc) {
    const census = {};
    const count = (definition) => {
        let exposes;
        try {
            exposes = typeof definition.exposes === "function" ? definition.exposes(undefined, {}) : definition.exposes;
        } catch {
            return; // exposes that need a real device to be computed
        }
        const walk = (expose) => {
            for (const feature of expose.features ?? []) walk(feature);
            if (expose.type === "numeric" && expose.property) {
                const units = (census[expose.property] ??= {});
                const unit = expose.unit ?? "";
                units[unit] = (units[unit] ?? 0) + 1;
            }
        };
        for (const expose of exposes ?? []) walk(expose);
    };
    if (generation.major === 1) {
        for (const definition of zhc.definitions) count(definition);
    } else {
        const folder = path.join(path.dirname(require.resolve(generation.zhcPackage)), "devices");
        for (const file of fs.readdirSync(folder).filter((name) => name.endsWith(".js") && name !== "index.js")) {
            for (const definition of require(path.join(folder, file)).definitions ?? []) {
                try {
                    count(zhc.prepareDefinition(definition));
                } catch {
                    // a definition this package cannot prepare outside a device
                }
            }
        }
    }
    return census;
}

function byKeyIn(z2m, key) {
    return [...z2m.devices.values()].find((device) => device.spec.key === key);
}

async function main() {
    const check = process.argv.includes("--check");
    const outDir = path.join(here, "fixtures");
    let stale = 0;
    for (const generation of GENERATIONS) {
        const fixture = await generate(generation);
        const text = `${JSON.stringify(JSON.parse(sortedJson(fixture)), null, 1)}\n`;
        const file = path.join(outDir, `${generation.key}.json`);
        if (check) {
            const committed = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
            if (committed !== text) {
                process.stderr.write(`${file} differs from what the generator produces\n`);
                stale++;
            }
        } else {
            fs.mkdirSync(outDir, {recursive: true});
            fs.writeFileSync(file, text);
            process.stdout.write(`wrote ${file}\n`);
        }
    }
    process.exitCode = stale ? 1 : 0;
}

await main();
