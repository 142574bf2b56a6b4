import { busContract } from '@stemflow/bus/contract';
import { rabbitHarness } from '../../support/rabbit.js';

busContract('RabbitMQ', () => rabbitHarness());
