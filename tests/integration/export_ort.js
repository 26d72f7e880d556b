// export_ort.js — runs an ONNX model in onnxruntime (the onnxruntime-node
// package's CPU runtime) on a raw float32 NCHW input file and writes the
// top-1 label of each image, one per line. Used by export_onnx.sh.
//   node export_ort.js MODEL.onnx INPUTS.f32 C H W OUT.txt
// NODE_PATH must reach onnxruntime-node.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
	const [model, inputs, c, h, w, out] = process.argv.slice(2);
	const C = +c, H = +h, W = +w, per = C * H * W;
	const buf = fs.readFileSync(inputs);
	const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
	const n = all.length / per;
	const session = await ort.InferenceSession.create(model);
	const labels = [];
	const B = 256; // a dynamic batch dimension: several batch sizes in one run
	for (let i = 0; i < n; i += B) {
		const k = Math.min(B, n - i);
		const x = new ort.Tensor('float32', all.subarray(i * per, (i + k) * per), [k, C, H, W]);
		const r = await session.run({ pixels: x });
		const logits = r.logits;
		const K = logits.dims[1];
		if (logits.dims[0] !== k) throw new Error(`logits batch ${logits.dims[0]}, want ${k}`);
		for (let j = 0; j < k; j++) {
			let best = 0;
			for (let q = 1; q < K; q++)
				if (logits.data[j * K + q] > logits.data[j * K + best]) best = q;
			labels.push(best);
		}
	}
	fs.writeFileSync(out, labels.join('\n') + '\n');
}
main().catch((e) => { console.error('export_ort.js: ' + e.message); process.exit(1); });
