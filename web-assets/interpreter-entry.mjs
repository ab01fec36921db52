import { expressionInterpreter } from 'vega-interpreter';
globalThis.vegaInterpreter = expressionInterpreter;
