import Docker from 'dockerode';
import { removeFunctionNetwork } from './dist/instance/network.js';
await removeFunctionNetwork(new Docker());
