"""The Fashion-MNIST models of examples/fashion_mnist/models.c in PyTorch, layer for layer
(change both together). Each maps images [batch, 784] to logits [batch, 10]. Initialisation
is PyTorch's own (it need not match: bench/torch/check_cnn.py loads jitgrad's weights).
jitgrad's LSTM has one bias per gate where nn.LSTM has two (b_ih + b_hh): the same function."""
import torch
from torch import nn

# The Adam learning rates of models.h (FM_MLP_LR, FM_CNN_LR, FM_RNN_LR).
LR = {"mlp": 1e-3, "cnn": 1e-3, "rnn": 2e-3}


class MLP(nn.Module):
    """784-256-128-100-10, ReLU and dropout 0.2 after each hidden layer."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(256, 128), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(128, 100), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(100, 10))

    def forward(self, images):
        return self.net(images)


class CNN(nn.Module):
    """2 x (conv 3x3 pad 1 no bias, batchnorm, ReLU, 2x2 max-pool), 64 and 128 channels;
    dense 6272 -> 256, ReLU, dropout; dense -> 10. Names as in jitgrad (conv1 = conv1.w,
    bn1 = conv1.gamma/beta/running_*)."""

    def __init__(self, dropout=0.3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(64, 128, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(128, eps=1e-5, momentum=0.1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(128 * 7 * 7, 256)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, images):
        x = images.view(-1, 1, 28, 28)
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        x = self.drop(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


class RNN(nn.Module):
    """Two stacked LSTMs of 128 over the 28 rows, many-to-one; dropout 0.2; dense -> 10."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, num_layers=2, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(128, 10)

    def forward(self, images):
        _, (h, _) = self.lstm(images.view(-1, 28, 28))
        return self.fc(self.drop(h[-1]))


MODELS = {"mlp": MLP, "cnn": CNN, "rnn": RNN}
