"""The lecture's script, as its post runs it: the whole workload a user compares against.

torchvision's FashionMNIST with ``ToTensor``, ``DataLoader(batch_size=100)`` (no shuffle),
``Adam(lr=0.001)``, 5 epochs = 3,000 iterations; every 50 iterations the accuracy on all
10,000 test images (in batches of 100, in train mode and with autograd on, as the post
does); a line every 500. The models are the post's (``nn.Dropout`` where it has
``nn.Dropout2d`` on flat tensors: the same computation, without the deprecation warning).
It imports nothing of archlab.

    python benchmarks/lecture_script.py dnn|cnn --root DATA_ROOT [--iterations 3000]

DATA_ROOT holds FashionMNIST/raw/ (archlab's data folder serves torchvision too).
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms
from torch.autograd import Variable
from torch.utils.data import DataLoader


class FashionDNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(in_features=784, out_features=256)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(in_features=256, out_features=128)
        self.fc3 = nn.Linear(in_features=128, out_features=10)

    def forward(self, input_data):
        out = input_data.view(-1, 784)
        out = F.relu(self.fc1(out))
        out = self.drop(out)
        out = F.relu(self.fc2(out))
        out = self.fc3(out)
        return out


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.layer2 = nn.Sequential(
            nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc1 = nn.Linear(in_features=64 * 6 * 6, out_features=600)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(in_features=600, out_features=120)
        self.fc3 = nn.Linear(in_features=120, out_features=10)

    def forward(self, x):
        out = self.layer1(x)
        out = self.layer2(out)
        out = out.view(out.size(0), -1)
        out = self.fc1(out)
        out = self.drop(out)
        out = self.fc2(out)
        out = self.fc3(out)
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=["dnn", "cnn"])
    parser.add_argument("--root", required=True)
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()

    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    train_dataset = torchvision.datasets.FashionMNIST(
        args.root, download=False, transform=transforms.Compose([transforms.ToTensor()])
    )
    test_dataset = torchvision.datasets.FashionMNIST(
        args.root,
        download=False,
        train=False,
        transform=transforms.Compose([transforms.ToTensor()]),
    )
    train_loader = DataLoader(train_dataset, batch_size=100)
    test_loader = DataLoader(test_dataset, batch_size=100)

    model = (FashionDNN() if args.model == "dnn" else FashionCNN()).to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    print(model)

    num_epochs = 5
    count = 0
    loss_list, iteration_list, accuracy_list = [], [], []
    predictions_list, labels_list = [], []
    accuracy = 0.0
    for _epoch in range(num_epochs):
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            train = Variable(images.view(100, 1, 28, 28))
            labels = Variable(labels)
            outputs = model(train)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            count += 1
            if not (count % 50):
                total = 0
                correct = 0
                for images, labels in test_loader:
                    images, labels = images.to(device), labels.to(device)
                    labels_list.append(labels)
                    test = Variable(images.view(100, 1, 28, 28))
                    outputs = model(test)
                    predictions = torch.max(outputs, 1)[1].to(device)
                    predictions_list.append(predictions)
                    correct += (predictions == labels).sum()
                    total += len(labels)
                accuracy = correct * 100 / total
                loss_list.append(loss.data)
                iteration_list.append(count)
                accuracy_list.append(accuracy)
            if not (count % 500):
                print(f"Iteration: {count}, Loss: {loss.data}, Accuracy: {accuracy}%")
            if count == args.iterations:
                return


if __name__ == "__main__":
    main()
