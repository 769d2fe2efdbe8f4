"""bf16 autocast vs fp32 gradients of one AN4 batch:  python reports/v2/bf16_grad_check.py CKPT (a v2 LSTM run's .ckpt)."""
import sys
import torch, glob, soundfile as sf
torch.set_num_threads(1); torch.manual_seed(0)
from zoo.tasks import TransducerTask
from zoo.hub.export import net_from_checkpoint
t = TransducerTask(encoder={"name":"lstm","stack":4,"hidden":320,"layers":3,"dropout":0.0},
  predictor={"embed_dim":128,"hidden":320,"layers":1,"dropout":0.0}, joiner={"joint_dim":320},
  featurizer={"sample_rate":16000,"n_mels":80}, tokenizer={"type":"char","vocab":" 'ABCDEFGHIJKLMNOPQRSTUVWXYZ"}, ctc_weight=0.3)
net,_ = net_from_checkpoint(sys.argv[1])
t.net.load_state_dict(net.state_dict())
files = sorted(glob.glob("../shared/data/an4/wav/an4_clstk/*/*.wav"))[:16]
import re
ids = open("../shared/data/an4/etc/an4_train.fileids").read().split()
tr = open("../shared/data/an4/etc/an4_train.transcription").read().splitlines()
from zoo.text import normalize_an4
m = {i.split("/")[-1]: normalize_an4(l) for i,l in zip(ids,tr)}
files = [f"../shared/data/an4/wav/{i}.wav" for i in ids[:16]]
texts = [m[i.split("/")[-1]] for i in ids[:16]]
wavs=[torch.tensor(sf.read(f,dtype="float32")[0]) for f in files]
lens=torch.tensor([w.numel() for w in wavs]); audio=torch.nn.utils.rnn.pad_sequence(wavs,batch_first=True)
batch={"audio":audio,"audio_lens":lens,"text":texts}
gs={}
for mode in ["fp32","bf16"]:
    t.zero_grad()
    with torch.autocast("cpu",dtype=torch.bfloat16,enabled=mode=="bf16"):
        loss,logs,_,_=t._forward_loss(batch,False)
    loss.backward()
    gs[mode]={n:p.grad.detach().clone() for n,p in t.named_parameters() if p.grad is not None}
    print(mode, {k: round(float(v),3) for k,v in logs.items()})
for n in gs["fp32"]:
    a,b=gs["fp32"][n].flatten(),gs["bf16"][n].flatten()
    if "encoder" in n and "weight" in n:
        print(n, "cos", round(float(torch.nn.functional.cosine_similarity(a,b,0)),3), "norm ratio", round(float(b.norm()/a.norm()),3))
